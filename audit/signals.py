"""What the audit app tells the apps above it: an entry of a tenant's trail was committed."""

from django.dispatch import Signal

#: Sent with ``entry`` (an ``AuditEntry`` with a tenant) once the transaction that recorded it
#: committed; receivers must not fail the sender (they run after its work is done).
recorded = Signal()
