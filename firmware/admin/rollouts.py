"""Rollouts in the cockpit: the list with progress, the add form with a preview of the reach, the rollout page.

- The list shows each rollout's image version, status, planned devices and a progress bar
  summed over its waves from the sharded counters (``firmware.counters.counts``, one query
  for the listed page).
- The add page asks for a released image, a name, the targets (device groups, device
  types, current firmware versions, explicit devices), one row per wave (a size in percent
  or devices, thresholds, minimum finished, soak, auto-advance; the last wave takes the
  rest) and the timing (per-device timeout, retries, start time, maintenance window,
  pace). Its preview (``preview/``, posted by ``static/cockpit/rollout_form.js`` while
  the form is filled in, and shown again whenever the form comes back) counts the devices
  the targets reach per group and type (``firmware.selectors.rollout_devices`` and
  ``rollout_preview``) without saving anything. Saving calls
  ``firmware.services.do_create_rollout``; its refusals appear on the form, and nothing
  is stored.
- The rollout page is read-only: the status and its reason, the targets and timing, one
  row per wave with its counts per state and a progress bar (refreshed by
  ``rollout_page.js`` while the rollout moves, from ``<id>/progress/``), the action
  buttons the state table (``firmware.states.ROLLOUT``) allows and the caller may use
  (``change`` on the rollout through the access layer: administrators, Standard users by
  policy; never support, never Business users), and the rollout's audit trail. Each button
  posts to ``<id>/action/<name>/``, which calls the service and reports its answer (a
  ``Conflict`` included) as a message.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from audit.models import AuditEntry
from cot.cockpit.mixins import ServiceForm, TenantScopedAdminMixin, acting_user, visible_rows
from cot.cockpit.site import cockpit
from devices.models import Device, DeviceGroup, DeviceType
from firmware import counters, selectors, services
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.models.rollouts import TIMING_FIELDS
from firmware.services.rollouts import MAX_WAVES
from firmware.states import ROLLOUT, can_move
from tenants.models import Action, User

#: wave rows with a size on the add page; the last wave (the rest) comes on top
SIZED_WAVE_ROWS = 5
#: devices named one by one on the add page (the API takes more)
MAX_NAMED_DEVICES = 1000
#: how often the rollout page refreshes its waves while the rollout moves
REFRESH_SECONDS = 5
#: rollout states in which figures change without anyone on the page acting
MOVING = frozenset({"planning", "running", "paused", "canceling"})

# Target states by what they mean for progress, in the order the bar shows them.
PROGRESS_PARTS = (
    ("succeeded", "succeeded", ("succeeded",)),
    ("failed", "failed", ("failed", "timed_out", "rejected")),
    ("updating", "updating", ("offered", "downloading", "downloaded", "verified", "installing")),
    ("closed", "canceled or skipped", ("canceled", "skipped")),
    ("pending", "pending", ("pending",)),
)
TARGET_STATES = [state for state, _label in RolloutTarget.Status.choices]
_SPLIT = re.compile(r"[\s,;]+")


# --- progress --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """A wave's (or a whole rollout's) devices per state, grouped for the progress bar."""

    total: int
    parts: tuple[tuple[str, str, int], ...]  # (css key, label, devices)

    @classmethod
    def of(cls, counts: Mapping[str, int], planned: int | None = None) -> Progress:
        parts = tuple((key, label, sum(counts.get(s, 0) for s in states)) for key, label, states in PROGRESS_PARTS)
        counted = sum(n for _key, _label, n in parts)
        return cls(total=max(counted, planned or 0), parts=parts)

    def count(self, key: str) -> int:
        return next(n for k, _label, n in self.parts if k == key)

    def bar(self) -> str:
        """The bar as HTML: one segment per non-empty part, with the figures as its title."""
        if not self.total:
            return format_html('<span class="rollout-progress rollout-progress-empty">{}</span>', "no devices")
        segments = format_html_join(
            "",
            '<span class="segment segment-{}" style="width: {}%" title="{}: {}"></span>',
            ((key, f"{100 * n / self.total:.2f}", label, n) for key, label, n in self.parts if n),
        )
        summary = f"{self.count('succeeded')} of {self.total} succeeded"
        if self.count("failed"):
            summary += f", {self.count('failed')} failed"
        return format_html(
            '<span class="rollout-progress" role="img" aria-label="{}"><span class="bar">{}</span>'
            '<span class="figures">{}</span></span>',
            summary,
            segments,
            summary,
        )


def wave_counts(waves: Iterable[RolloutWave]) -> dict[int, dict[str, int]]:
    """``{wave id: {state: devices}}`` from the sharded counters, for waves the caller already sees."""
    return counters.counts(wave.pk for wave in waves)


def rollout_counts(user: Any, rollouts: Iterable[Rollout]) -> dict[int, dict[str, int]]:
    """``{rollout id: {state: devices}}`` over all waves of each rollout, in two queries."""
    waves = list(
        RolloutWave.objects.restrict(user, Action.VIEW)
        .filter(rollout__in=[rollout.pk for rollout in rollouts])
        .only("pk", "rollout_id")
    )
    figures = wave_counts(waves)
    per_rollout: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for wave in waves:
        for state, n in figures.get(wave.pk, {}).items():
            per_rollout[wave.rollout_id][state] += n
    return {pk: dict(states) for pk, states in per_rollout.items()}


def size_label(wave: RolloutWave, last: bool) -> str:
    if last:
        return "the rest"
    if wave.count is not None:
        return f"{wave.count} devices"
    return f"{wave.percent.normalize():f} %" if wave.percent is not None else "the rest"


# --- the add form --------------------------------------------------------------------------


class WaveForm(forms.Form):
    """One wave on the add page: a size (percent or devices; none for the last) and how it is judged."""

    size = forms.DecimalField(
        required=False, min_value=Decimal("0.01"), max_digits=7, decimal_places=2, widget=forms.NumberInput()
    )
    unit = forms.ChoiceField(
        choices=(("percent", "% of the devices"), ("count", "devices")), initial="percent", required=False
    )
    success_threshold = forms.IntegerField(required=False, min_value=0, max_value=100, initial=95)
    error_threshold = forms.IntegerField(required=False, min_value=0, max_value=100, initial=5)
    min_finished = forms.IntegerField(required=False, min_value=0, initial=1)
    soak_minutes = forms.IntegerField(required=False, min_value=0, max_value=30 * 24 * 60, initial=60)
    auto_advance = forms.BooleanField(required=False, initial=False)

    def __init__(self, *args: Any, last: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last = last
        if last:
            del self.fields["size"], self.fields["unit"]
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "wave-input")

    def has_changed(self) -> bool:
        """Whether the row is in use: a size given, or a threshold, soak or auto-advance set otherwise than by default.

        The unit alone does not count (it means nothing without a size), nor does a field
        left out of the POST.
        """
        if not self.last and str(self.data.get(self.add_prefix("size"), "")).strip():
            return True
        for name in ("success_threshold", "error_threshold", "min_finished", "soak_minutes"):
            raw = str(self.data.get(self.add_prefix(name), "")).strip()
            if raw and raw != str(self.fields[name].initial):
                return True
        return self.add_prefix("auto_advance") in self.data and self.fields["auto_advance"].widget.value_from_datadict(
            self.data, self.files, self.add_prefix("auto_advance")
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.last and cleaned.get("size") is None and not self.errors:
            self.add_error("size", "Give this wave a size, or leave the whole row as it was to skip it.")
        if cleaned.get("unit") == "count" and cleaned.get("size") is not None and cleaned["size"] % 1:
            self.add_error("size", "A number of devices is a whole number.")
        return cleaned

    def spec(self) -> dict[str, Any]:
        """The wave as ``do_create_rollout`` takes it (blank fields: the model's defaults)."""
        data = self.cleaned_data
        spec: dict[str, Any] = {}
        if not self.last:
            if data.get("unit") == "count":
                spec["count"] = int(data["size"])
            else:
                spec["percent"] = data["size"]
        for name in ("success_threshold", "error_threshold", "min_finished"):
            if data.get(name) is not None:
                spec[name] = data[name]
        if data.get("soak_minutes") is not None:
            spec["soak_seconds"] = data["soak_minutes"] * 60
        spec["auto_advance"] = bool(data.get("auto_advance"))
        return spec


class RolloutForm(ServiceForm):
    """A new rollout: image, name, targets, waves and timing; ``do_create_rollout`` decides."""

    target_groups = forms.ModelMultipleChoiceField(
        queryset=DeviceGroup.objects.none(),
        required=False,
        label="device groups",
        help_text="Only devices in these groups (none chosen: any group).",
    )
    target_types = forms.ModelMultipleChoiceField(
        queryset=DeviceType.objects.none(),
        required=False,
        label="device types",
        help_text="Only devices of these types (none chosen: every type the image fits).",
    )
    target_versions = forms.MultipleChoiceField(
        choices=(),
        required=False,
        label="current firmware versions",
        help_text="Only devices now running one of these versions (none chosen: any version).",
    )
    target_devices = forms.CharField(
        required=False,
        label="devices",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Only these devices: external ids (or ids), separated by spaces, commas or lines. "
        "Every list you fill narrows the selection further.",
    )

    # Set per request by RolloutAdmin.get_form: the caller (choices come through the access layer).
    actor: User | None = None

    class Meta:
        model = Rollout
        fields = ("image", "name", *TIMING_FIELDS)
        labels = {
            "device_timeout_seconds": "per-device timeout (seconds)",
            "max_retries": "automatic retries",
            "start_at": "start no earlier than",
            "window_cron": "maintenance window (cron)",
            "window_minutes": "window length (minutes)",
            "window_timezone": "window time zone",
            "pace_per_minute": "pace (devices per minute)",
        }
        help_texts = {
            "device_timeout_seconds": "A device that has not finished this long after its first progress report "
            "times out.",
            "max_retries": "How often a failed or timed-out device is offered the update again on its own.",
            "start_at": "Optional; nothing is offered before this time.",
            "window_cron": "Optional, with length and time zone: when the window opens, as five cron fields "
            "(0 2 * * 1-5: at 02:00 on weekdays). Devices are offered the update only inside it.",
            "window_minutes": "How long the window stays open.",
            "window_timezone": "The time zone of the cron fields, such as Europe/Berlin.",
            "pace_per_minute": "Optional: at most this many devices are offered the update per minute.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actor = self.actor
        groups, types = self.fields["target_groups"], self.fields["target_types"]
        versions = self.fields["target_versions"]
        assert isinstance(groups, forms.ModelMultipleChoiceField)
        assert isinstance(types, forms.ModelMultipleChoiceField)
        assert isinstance(versions, forms.MultipleChoiceField)
        if actor is not None:
            # Groups whose devices the caller may change: planning reaches no others.
            groups.queryset = DeviceGroup.objects.restrict(actor, Action.CHANGE)
            types.queryset = visible_rows(DeviceType, actor) or DeviceType.objects.none()
            devices = Device.objects.restrict(actor, Action.VIEW).exclude(firmware_version="")
            found = devices.order_by("firmware_version").values_list("firmware_version", flat=True).distinct()[:500]
            versions.choices = [(v, v) for v in found]
        data = self.data if self.is_bound else None
        self.wave_rows = [
            WaveForm(data, prefix=f"wave{index}", empty_permitted=True, use_required_attribute=False)
            for index in range(SIZED_WAVE_ROWS)
        ]
        self.last_wave = WaveForm(data, prefix="last", last=True, use_required_attribute=False)

    def clean_target_groups(self) -> list[int]:
        return [group.pk for group in self.cleaned_data.get("target_groups") or []]

    def clean_target_types(self) -> list[int]:
        return [kind.pk for kind in self.cleaned_data.get("target_types") or []]

    def clean_target_devices(self) -> list[int]:
        text = self.cleaned_data.get("target_devices") or ""
        tokens = list(dict.fromkeys(token for token in _SPLIT.split(text) if token))
        if not tokens:
            return []
        if len(tokens) > MAX_NAMED_DEVICES:
            raise ValidationError(f"Name at most {MAX_NAMED_DEVICES} devices here (the API takes more).")
        visible = Device.objects.restrict(self.actor, Action.VIEW) if self.actor is not None else Device.objects.none()
        by_external = dict(visible.filter(external_id__in=tokens).values_list("external_id", "pk"))
        numbers = [int(t) for t in tokens if t not in by_external and t.isdigit() and len(t) < 19]
        by_id = {str(pk): pk for pk in visible.filter(pk__in=numbers).values_list("pk", flat=True)}
        unknown = [t for t in tokens if t not in by_external and t not in by_id]
        if unknown:
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            raise ValidationError(f"No device of yours is called {shown}.")
        return list(dict.fromkeys(by_external.get(t) or by_id[t] for t in tokens))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        window = ("window_cron", "window_minutes", "window_timezone")
        given = [name for name in window if cleaned.get(name) not in (None, "")]
        if given and len(given) < len(window) and not any(name in self.errors for name in window):
            for name in window:
                if name not in given:
                    self.add_error(name, "A maintenance window needs its cron fields, its length and its time zone.")
        rows = [*self.wave_rows, self.last_wave]
        if not all(row.is_valid() for row in rows):
            self.add_error(None, "Some waves need fixing; see the marked rows.")
            return cleaned
        sized = [row.spec() for row in self.wave_rows if row.has_changed()]
        if len(sized) + 1 > MAX_WAVES:  # pragma: no cover - fewer rows are shown
            self.add_error(None, f"Give at most {MAX_WAVES} waves.")
        cleaned["waves"] = [*sized, self.last_wave.spec()]
        return cleaned

    def wave_errors(self) -> bool:
        return any(row.errors for row in [*self.wave_rows, self.last_wave])

    def preview_spec(self) -> dict[str, Any] | None:
        """Image and targets when those fields validated (whatever the rest says), else ``None``."""
        self.is_valid()
        names = ("image", "target_groups", "target_types", "target_versions", "target_devices")
        if any(name in self.errors for name in names) or self.cleaned_data.get("image") is None:
            return None
        data = self.cleaned_data
        return {
            "image": data["image"],
            "target_groups": list(data.get("target_groups") or []),
            "target_types": list(data.get("target_types") or []),
            "target_versions": list(data.get("target_versions") or []),
            "target_devices": list(data.get("target_devices") or []),
        }


def preview_rows(actor: User, spec: Mapping[str, Any]) -> dict[str, Any]:
    """How many devices a rollout with ``spec`` reaches now, per group and type, with their names."""
    tenant_id = spec["image"].tenant_id
    devices = selectors.rollout_devices(tenant=tenant_id, actor=actor, **spec)
    counted = selectors.rollout_preview(devices)
    groups = dict((visible_rows(DeviceGroup, actor) or DeviceGroup.objects.none()).values_list("pk", "name"))
    types = {t.pk: str(t) for t in visible_rows(DeviceType, actor) or DeviceType.objects.none()}
    rows = [
        {
            "group": groups.get(row["group"], "(no group)") if row["group"] is not None else "(no group)",
            "type": types.get(row["type"], "—") if row["type"] is not None else "—",
            "devices": row["devices"],
        }
        for row in counted
    ]
    return {"total": sum(row["devices"] for row in rows), "rows": rows}


# --- actions on the rollout page -------------------------------------------------------------


def _plan(rollout: Rollout, actor: User, request: HttpRequest) -> tuple[int, str]:
    done = services.do_plan_rollout(rollout, actor=actor)
    if done.status == Rollout.Status.READY:
        return messages.SUCCESS, f"Planned: {done.planned_total} devices in their waves. Start it when you are ready."
    if done.status == Rollout.Status.PLAN_FAILED:
        return messages.ERROR, f"Planning failed: {done.status_reason}"
    return messages.INFO, "Planning has begun; this page shows the waves when it is done."


def _start(rollout: Rollout, actor: User, request: HttpRequest) -> tuple[int, str]:
    services.do_start_rollout(rollout, actor=actor)
    return messages.SUCCESS, "Started: the first wave begins with the next evaluation."


def _pause(rollout: Rollout, actor: User, request: HttpRequest) -> tuple[int, str]:
    reason = str(request.POST.get("reason", ""))
    services.do_pause_rollout(rollout, actor=actor, reason=reason)
    return messages.SUCCESS, "Paused: nothing new is offered; devices already updating finish."


def _resume(rollout: Rollout, actor: User, request: HttpRequest) -> tuple[int, str]:
    services.do_resume_rollout(rollout, actor=actor)
    return messages.SUCCESS, "Resumed."


def _cancel(rollout: Rollout, actor: User, request: HttpRequest) -> tuple[int, str]:
    done = services.do_cancel_rollout(rollout, actor=actor)
    if done.status == Rollout.Status.CANCELING:
        return messages.SUCCESS, "Canceling: devices already installing finish; nothing else is offered."
    return messages.SUCCESS, "Canceled."


def _retry(rollout: Rollout, actor: User, request: HttpRequest) -> tuple[int, str]:
    moved = services.do_retry_failed_targets(rollout, actor=actor)
    if not moved:
        return messages.INFO, "No failed device has used up its automatic retries; nothing to retry."
    return messages.SUCCESS, f"{moved} failed devices will be offered the update again."


def _advance(rollout: Rollout, actor: User, request: HttpRequest) -> tuple[int, str]:
    wave = services.do_advance_wave(rollout, actor=actor)
    return messages.SUCCESS, f"Wave {wave.index + 1} started ({wave.planned} devices)."


@dataclass(frozen=True)
class RolloutAction:
    name: str
    label: str
    run: Callable[[Rollout, User, HttpRequest], tuple[int, str]]
    danger: bool = False


ACTIONS: dict[str, RolloutAction] = {
    action.name: action
    for action in (
        RolloutAction("plan", "Plan", _plan),
        RolloutAction("start", "Start", _start),
        RolloutAction("pause", "Pause", _pause),
        RolloutAction("resume", "Resume", _resume),
        RolloutAction("advance", "Advance to the next wave", _advance),
        RolloutAction("retry", "Retry failed devices", _retry),
        RolloutAction("cancel", "Cancel rollout", _cancel, danger=True),
    )
}


def allowed_actions(rollout: Rollout, waves: list[RolloutWave], counts: Mapping[int, Mapping[str, int]]) -> list[str]:
    """The actions whose move ``firmware.states.ROLLOUT`` lists from the rollout's state (and that have work)."""
    status = rollout.status
    allowed = []
    if can_move(ROLLOUT, status, Rollout.Status.PLANNING):
        allowed.append("plan")
    if status == Rollout.Status.READY and can_move(ROLLOUT, status, Rollout.Status.RUNNING):
        allowed.append("start")
    if can_move(ROLLOUT, status, Rollout.Status.PAUSED):
        allowed.append("pause")
    if status == Rollout.Status.PAUSED and can_move(ROLLOUT, status, Rollout.Status.RUNNING):
        allowed.append("resume")
    if status == Rollout.Status.RUNNING:
        begun = [w for w in waves if w.status != RolloutWave.Status.PENDING]
        pending = [w for w in waves if w.status == RolloutWave.Status.PENDING]
        if begun and begun[-1].status == RolloutWave.Status.SUCCEEDED and pending:
            allowed.append("advance")
    if status in (Rollout.Status.RUNNING, Rollout.Status.PAUSED):
        failed = sum(counts.get(w.pk, {}).get(s, 0) for w in waves for s in ("failed", "timed_out"))
        if failed:
            allowed.append("retry")
    # As the service moves it: at once before anything was offered, through canceling after.
    at_once = status in (Rollout.Status.DRAFT, Rollout.Status.READY)
    if can_move(ROLLOUT, status, Rollout.Status.CANCELED if at_once else Rollout.Status.CANCELING):
        allowed.append("cancel")
    return allowed


# --- the admin ---------------------------------------------------------------------------------


@admin.register(Rollout, site=cockpit)
class RolloutAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Everyone in the tenant reads rollouts; administrators create them; who may change one acts on it."""

    form = RolloutForm
    add_form_template = "admin/firmware/rollout/add_form.html"
    change_form_template = "admin/firmware/rollout/change_form.html"
    list_display = ("name", "image_version", "status", "planned_total", "progress", "created_at")
    list_display_links = ("name",)
    list_filter = ("status",)
    list_select_related = ("image",)
    search_fields = ("name", "image__version")
    actions = None
    shown = (
        "name",
        "image_version",
        "status",
        "status_reason",
        "timing",
        "planned_total",
        "created_by",
        "created_at",
        "planned_at",
        "started_at",
        "finished_at",
    )

    # --- columns ---------------------------------------------------------------------------

    @admin.display(description="image version", ordering="image__version")
    def image_version(self, obj: Rollout) -> str:
        return obj.image.version

    @admin.display(description="progress")
    def progress(self, obj: Rollout) -> str:
        """Devices per state over all waves (figures read for the whole page in one query)."""
        totals: Mapping[str, int] = getattr(obj, "progress_counts", None) or {}
        return Progress.of(totals, obj.planned_total).bar()

    @admin.display(description="timing")
    def timing(self, obj: Rollout) -> str:
        parts = [f"timeout {obj.device_timeout_seconds} s per device", f"{obj.max_retries} automatic retries"]
        if obj.start_at:
            parts.append(f"not before {obj.start_at:%Y-%m-%d %H:%M %Z}")
        if obj.window_cron:
            parts.append(f"window “{obj.window_cron}” for {obj.window_minutes} min ({obj.window_timezone})")
        if obj.pace_per_minute:
            parts.append(f"at most {obj.pace_per_minute} devices per minute")
        return "; ".join(parts)

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        per_rollout = rollout_counts(request.user, rows)
        for row in rows:
            row.progress_counts = per_rollout.get(row.pk, {})
        changelist.result_list = rows
        return changelist

    # --- permissions -------------------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A rollout never changes through a form; its page is read-only and acts through buttons.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # canceled, never deleted: what it did stays on record

    def may_act(self, request: HttpRequest, rollout: Rollout) -> bool:
        """Whether the caller may change this rollout (the access layer's rule for ``change``)."""
        return self._may(request, Action.CHANGE, rollout)

    # --- the add page ------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return ((None, {"fields": self.shown}),)
        return (
            (None, {"fields": ("image", "name")}),
            (
                "Targets",
                {
                    "fields": ("target_groups", "target_types", "target_versions", "target_devices"),
                    "description": "Only devices of the image's device types are reached, never decommissioned "
                    "ones, and only those you may change.",
                },
            ),
            (
                "Timing",
                {"fields": TIMING_FIELDS},
            ),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.shown if obj is not None else ()

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        # A fresh class per request (get_form builds one), so this reaches this request only.
        form.actor = acting_user(request)
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "image" and field is not None:
            field.queryset = field.queryset.filter(status=FirmwareImage.Status.RELEASED).order_by("-released_at")
            field.help_text = "A released image of yours; devices of its device types are reached."
        return field

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "image" and field is not None:
            # Images are uploaded and released on their own pages, not from here. The admin
            # wraps the widget after formfield_for_foreignkey, so the wrapper is changed here.
            for link in ("can_add_related", "can_change_related", "can_delete_related", "can_view_related"):
                setattr(field.widget, link, False)
        return field

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any | None = None,
    ) -> HttpResponse:
        if add:
            form = context["adminform"].form
            context["wave_rows"] = [(index + 1, row) for index, row in enumerate(form.wave_rows)]
            context["last_wave"] = form.last_wave
            context["wave_errors"] = form.is_bound and form.wave_errors()
            context["preview_url"] = reverse(f"{self.admin_site.name}:firmware_rollout_preview")
            spec = form.preview_spec() if form.is_bound else None
            context["preview"] = preview_rows(acting_user(request), spec) if spec is not None else None
        return super().render_change_form(request, context, add, change, form_url, obj)

    def create_object(self, request: HttpRequest, form: Any) -> Rollout:
        data = form.cleaned_data
        return services.do_create_rollout(
            image=data["image"],
            name=data["name"],
            waves=data["waves"],
            target_groups=data["target_groups"],
            target_types=data["target_types"],
            target_versions=list(data["target_versions"]),
            target_devices=list(data["target_devices"]),
            device_timeout_seconds=data["device_timeout_seconds"],
            max_retries=data["max_retries"],
            start_at=data["start_at"],
            window_cron=data["window_cron"],
            window_minutes=data["window_minutes"],
            window_timezone=data["window_timezone"],
            pace_per_minute=data["pace_per_minute"],
            actor=acting_user(request),
        )

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> HttpResponse:
        self.message_user(
            request,
            f"Rollout “{obj}” was created as a draft. Plan it to assign its devices to waves.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:firmware_rollout_change", args=(obj.pk,)))

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """The reach of the add form's image and targets (POSTed as the form posts them), as JSON."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = self.get_form(request)(request.POST)
        spec = form.preview_spec()
        if spec is None:
            names = ("image", "target_groups", "target_types", "target_versions", "target_devices")
            errors = {name: [str(e) for e in form.errors[name]] for name in names if name in form.errors}
            if not errors:
                errors = {"image": ["Choose a released image to see whom it reaches."]}
            return JsonResponse({"errors": errors}, status=400)
        return JsonResponse(preview_rows(acting_user(request), spec))

    # --- the rollout page ----------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site
        return [
            path("preview/", site.admin_view(self.preview_view), name="firmware_rollout_preview"),
            path(
                "<path:object_id>/action/<str:action>/",
                site.admin_view(self.action_view),
                name="firmware_rollout_action",
            ),
            path("<path:object_id>/progress/", site.admin_view(self.progress_view), name="firmware_rollout_progress"),
            *super().get_urls(),
        ]

    def rollout_page(self, request: HttpRequest, rollout: Rollout) -> dict[str, Any]:
        """The waves with their figures, the allowed actions and the audit trail of ``rollout``."""
        waves = list(RolloutWave.objects.restrict(request.user, Action.VIEW).filter(rollout=rollout).order_by("index"))
        counts = wave_counts(waves)
        last = len(waves) - 1
        # Columns for the states some device of the rollout is in, and always the three that tell most.
        present = {state for figures in counts.values() for state, n in figures.items() if n}
        states = [s for s in TARGET_STATES if s in present or s in ("pending", "succeeded", "failed")]
        rows = []
        overall: dict[str, int] = defaultdict(int)
        for index, wave in enumerate(waves):
            figures = counts.get(wave.pk, {})
            for state, n in figures.items():
                overall[state] += n
            rows.append(
                {
                    "wave": wave,
                    "size": size_label(wave, index == last),
                    "counts": [figures.get(state, 0) for state in states],
                    "bar": Progress.of(figures, wave.planned).bar(),
                }
            )
        may_act = self.may_act(request, rollout)
        actions = [ACTIONS[name] for name in allowed_actions(rollout, waves, counts)] if may_act else []
        return {
            "rollout": rollout,
            "wave_rows": rows,
            "states": states,
            "overall_bar": Progress.of(overall, rollout.planned_total).bar(),
            "rollout_actions": actions,
            "live": rollout.status in MOVING,
        }

    def audit_entries(self, request: HttpRequest, rollout: Rollout) -> list[AuditEntry]:
        """The rollout's own audit entries as the caller may read the trail (administrators), newest first."""
        content_type = ContentType.objects.get_for_model(Rollout)
        rows = AuditEntry.objects.restrict(request.user, Action.VIEW).filter(
            content_type=content_type, object_pk=str(rollout.pk)
        )
        return list(rows.order_by("-seq")[:200])

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        rollout = self.get_object(request, unquote(object_id))
        page = self.rollout_page(request, rollout)
        context = {
            **(extra_context or {}),
            **page,
            # Named as the caller may see them (read-only fields get the object only).
            "targets_text": describe_targets(rollout, acting_user(request)),
            "waves_html": render_to_string("admin/firmware/rollout/waves.html", page, request=request),
            "progress_url": reverse(f"{self.admin_site.name}:firmware_rollout_progress", args=(rollout.pk,)),
            "refresh_seconds": REFRESH_SECONDS,
            "rollout_audit": [
                {"entry": entry, "details": json.dumps(entry.additional_data, sort_keys=True, default=str)}
                for entry in self.audit_entries(request, rollout)
            ],
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        return super().change_view(request, object_id, form_url, context)

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The waves table of the rollout page, fresh, for the page's refresh (JSON with the HTML)."""
        rollout = self.get_object(request, unquote(object_id))
        page = self.rollout_page(request, rollout)
        html = render_to_string("admin/firmware/rollout/waves.html", page, request=request)
        return JsonResponse({"status": rollout.status, "live": page["live"], "html": html})

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """Run one of the page's buttons (404 out of reach, 403 for a caller who may only look); answer by message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        rollout = self.get_object(request, unquote(object_id))
        chosen = ACTIONS.get(action)
        if chosen is None:
            raise Http404("No such action.")
        if not self.may_act(request, rollout):
            raise PermissionDenied
        try:
            level, text = chosen.run(rollout, acting_user(request), request)
        except ValidationError as exc:  # Conflict included: a move the state table does not allow
            level, text = messages.ERROR, f"{chosen.label}: {' '.join(exc.messages)}"
        except (PermissionDenied, Http404) as exc:
            reason = str(exc) or "you may not change this rollout."
            level, text = messages.ERROR, f"{chosen.label}: {reason}"
        self.message_user(request, text, level)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:firmware_rollout_change", args=(rollout.pk,)))


def describe_targets(rollout: Rollout, viewer: User) -> list[str]:
    """The target spec in words; ids the viewer cannot see (or that are gone) are counted, not named."""
    parts: list[str] = []
    if rollout.target_groups:
        names = _names(visible_rows(DeviceGroup, viewer), rollout.target_groups)
        parts.append("groups " + names)
    if rollout.target_types:
        parts.append("types " + _names(visible_rows(DeviceType, viewer), rollout.target_types))
    if rollout.target_versions:
        parts.append("running " + ", ".join(rollout.target_versions))
    if rollout.target_devices:
        shown = Device.objects.restrict(viewer, Action.VIEW).filter(pk__in=rollout.target_devices[:20])
        external = sorted(shown.values_list("external_id", flat=True))
        more = len(rollout.target_devices) - len(external)
        parts.append("devices " + ", ".join(external) + (f" and {more} more" if more > 0 else ""))
    return parts or ["every device of the image's types"]


def _names(rows: QuerySet[Any] | None, ids: list[int]) -> str:
    found = [str(row) for row in rows.filter(pk__in=ids)] if rows is not None else []
    hidden = len(ids) - len(found)
    return ", ".join(sorted(found)) + (f" and {hidden} others" if hidden > 0 else "") if found else f"{hidden} (hidden)"
