"""Troupe core: hook specifications, the reconcile runtime, CRD generation and helpers for plugins.

Plugins import what they need from here::

    from troupe import hookimpl, KindSpec, ChildKind, PrinterColumn, StatusUpdate, Condition
"""

import pluggy

from troupe.conditions import Condition
from troupe.context import Children, Manifest, ReconcileContext, StatusUpdate
from troupe.cron import Cron, CronError
from troupe.durations import MAX_DURATION, Duration, format_duration, parse_duration
from troupe.hookspecs import PROJECT
from troupe.kinds import ChildKind, KindSpec, PrinterColumn
from troupe.models import SpecModel, StatusModel
from troupe.naming import dns1123_label, label_value, standard_labels

#: Marks a function as a Troupe hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = [
    "MAX_DURATION",
    "ChildKind",
    "Children",
    "Condition",
    "Cron",
    "CronError",
    "Duration",
    "KindSpec",
    "Manifest",
    "PrinterColumn",
    "ReconcileContext",
    "SpecModel",
    "StatusModel",
    "StatusUpdate",
    "dns1123_label",
    "format_duration",
    "hookimpl",
    "label_value",
    "parse_duration",
    "standard_labels",
]
