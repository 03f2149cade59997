"""Troupe core: hook specifications, the reconcile runtime, CRD generation and helpers for plugins.

A plugin imports only what this module exports (a test fails on an import of any other core module)::

    from troupe import hookimpl, KindSpec, ChildKind, PrinterColumn, StatusUpdate, Condition
"""

# isort: off
import troupe._kopf_alone  # noqa: F401  # first: kopf is imported without the client libraries it probes

# isort: on
import pluggy

from troupe.clock import isoformat, parse_time
from troupe.conditions import Condition
from troupe.context import (
    ActionRecord,
    AdmissionState,
    ChildKey,
    Children,
    Manifest,
    ReconcileContext,
    StatusUpdate,
)
from troupe.cron import Cron, CronError
from troupe.durations import DURATION_PATTERN, MAX_DURATION, Duration, format_duration, parse_duration
from troupe.engine.apply import (
    CREATE_ONLY_ANNOTATION,
    OWNER_ANNOTATION,
    OWNER_UID_ANNOTATION,
    RETAIN_ANNOTATION,
)
from troupe.engine.metrics import OperatorMetrics, metric_name
from troupe.handle import EventCallback, OperatorHandle
from troupe.hookspecs import PROJECT
from troupe.kinds import Action, Admission, ChildKind, KindSpec, PrinterColumn, RelatedKind
from troupe.models import SpecModel, StatusModel
from troupe.naming import dns1123_label, label_value, standard_labels

#: Marks a function as a Troupe hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = [
    "CREATE_ONLY_ANNOTATION",
    "DURATION_PATTERN",
    "MAX_DURATION",
    "OWNER_ANNOTATION",
    "OWNER_UID_ANNOTATION",
    "RETAIN_ANNOTATION",
    "Action",
    "ActionRecord",
    "Admission",
    "AdmissionState",
    "ChildKey",
    "ChildKind",
    "Children",
    "Condition",
    "Cron",
    "CronError",
    "Duration",
    "EventCallback",
    "KindSpec",
    "Manifest",
    "OperatorHandle",
    "OperatorMetrics",
    "PrinterColumn",
    "ReconcileContext",
    "RelatedKind",
    "SpecModel",
    "StatusModel",
    "StatusUpdate",
    "dns1123_label",
    "format_duration",
    "hookimpl",
    "isoformat",
    "label_value",
    "metric_name",
    "parse_duration",
    "parse_time",
    "standard_labels",
]
