"""Firmware images, signing keys and rollouts arrive with their own issue."""
