"""The hook specifications of Troupe: the whole contract between the core and its plugins.

Every operator (the five built-in ones too) and every third-party extension is a pluggy plugin that
implements some of these hooks, marked with :data:`troupe.hookimpl`. A plugin is found through the
``troupe`` entry-point group or registered explicitly (tests). Hooks are called in LIFO registration
order, so a plugin installed after an operator sees the operator's results first; use
``@hookimpl(trylast=True)`` / ``tryfirst=True`` to say otherwise.

Hooks that receive ``ctx`` get a :class:`troupe.ReconcileContext`: the object, its parsed spec, the
observed children and the reconcile's clock reading (``ctx.now``). Hooks must not read the clock, call the
API server or keep state between calls; the core does all I/O.

Hooks of a kind (validate, build, mutate, aggregate status, status changed, finalize) are called on the
plugin that declared the kind and on extension plugins (those declaring no kind), never on another
operator's plugin: an implementation needs no check of ``ctx.kind``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from troupe.context import Manifest, ReconcileContext, StatusUpdate
    from troupe.handle import OperatorHandle
    from troupe.kinds import KindSpec

PROJECT = "troupe"

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def troupe_kinds() -> list[KindSpec]:
    """Declare the custom resource kinds a plugin serves.

    Called once when the plugin manager is set up (by ``troupe run``, ``troupe crds`` and the CRD
    generator), never during reconciles.

    :return: the :class:`~troupe.kinds.KindSpec` of every kind the plugin owns: API group, version,
        names, scope, pydantic spec/status models (the CRD schema source), printer columns, short names,
        categories, and the child kinds it creates. Plugins that only extend other operators return
        an empty list. Results of all plugins are concatenated (not firstresult); two plugins declaring
        the same group/kind is an error.
    """


@hookspec
def troupe_validate(ctx: ReconcileContext[Any]) -> list[str] | None:
    """Check a spec beyond what the schema and its CEL rules can say.

    Called at the start of every reconcile, after the spec parsed into its model and before any child is
    built. Use it for rules that need the whole object (a dependency cycle, a reference to another
    field) and cannot be expressed in the CRD.

    :param ctx: the reconcile context.
    :return: a list of error messages, each saying what to fix (``None`` or ``[]`` when valid). The
        messages of all plugins are gathered (not firstresult); any message makes the object ``Failed``
        with a ``Ready=False`` condition of reason ``InvalidSpec``, and no child is touched.
    """


@hookspec
def troupe_build_resources(ctx: ReconcileContext[Any]) -> list[Manifest] | None:
    """Build the child objects an object should have right now.

    Called on every reconcile of a kind the plugin declared (other plugins may return extra children for
    it too), and on each attempt to finalize an object of a ``finalize=True`` kind, with ``ctx.deleting``
    True: then return only what should still exist during teardown. Must be a pure function of ``ctx``:
    same context, same manifests.

    :param ctx: the reconcile context; ``ctx.children`` holds what is observed, ``ctx.now`` the time.
    :return: full manifests (apiVersion, kind, metadata.name, spec...) of every child that should exist.
        Lists of all plugins are concatenated (not firstresult). The core adds standard labels and owner
        references, passes each through :func:`troupe_mutate_resource`, applies them with server-side
        apply, and deletes children of pruned kinds that are no longer returned. A child annotated
        ``troupe.dev/retain: "true"`` gets no owner reference, so it outlives its owner; one annotated
        ``troupe.dev/create-only: "true"`` is created when absent and never updated. To keep an existing
        child as it is, return the observed object itself (from ``ctx.children``): the core works on a copy,
        and looks at it again only when the child or its owner changes.
    """


@hookspec
def troupe_mutate_resource(ctx: ReconcileContext[Any], resource: Manifest) -> None:
    """Change a built child before it is applied: the third-party extension point.

    Called once for every manifest :func:`troupe_build_resources` returned, after the core added its
    labels and owner references. Add labels, annotations, sidecars, tolerations, node selectors, image
    mirrors... by editing ``resource`` in place. Every implementation is called (not firstresult).

    :param ctx: the reconcile context of the owning object.
    :param resource: the manifest about to be applied; mutate it in place.
    :return: nothing.
    """


@hookspec(firstresult=True)
def troupe_aggregate_status(ctx: ReconcileContext[Any]) -> StatusUpdate | None:
    """Compute an object's status from its spec and its observed children.

    Called at the end of every reconcile, after the children were applied (``ctx.children`` holds the
    applied state). firstresult: the first plugin returning a value decides; a third party can take over
    with ``tryfirst=True``.

    :param ctx: the reconcile context.
    :return: a :class:`~troupe.context.StatusUpdate` (phase, conditions, other status fields, an optional
        requeue delay, and whether to delete the object), or ``None`` to leave it to the next plugin.
        The core merges conditions with metav1 semantics, sets ``observedGeneration``, and patches the
        status subresource only when something changed.
    """


@hookspec
def troupe_status_changed(ctx: ReconcileContext[Any], old: dict[str, Any], new: dict[str, Any]) -> None:
    """React to a status the core has just written: metrics, logs, notifications.

    Called after every status patch that changed something, with the status before and after (the
    after-state is the whole status as stored). Writes are coalesced (a phase or condition change is
    written at once, other changes about once a second or at the kind's ``status_interval``), so one
    call may span several reconciles.
    Every implementation is called (not firstresult). Must not raise; errors are logged and ignored,
    since the write already happened.

    :param ctx: the context of the last reconcile that decided this status.
    :param old: the status before the patch (empty for a new object).
    :param new: the status after the patch.
    :return: nothing.
    """


@hookspec
def troupe_finalize(ctx: ReconcileContext[Any]) -> None:
    """Clean up what Kubernetes garbage collection cannot, when an object is deleted.

    Called while the object is being deleted, for kinds that declare ``finalize=True`` (the core then
    holds the operator's finalizer on them), right after :func:`troupe_build_resources` ran with
    ``ctx.deleting`` True and the children it left out were deleted. Every implementation is called
    (not firstresult). Raise ``kopf.TemporaryError(delay=...)`` to be called again later (a teardown in
    steps); the finalizer is removed once all return.

    :param ctx: the reconcile context (``ctx.deleting`` is True).
    :return: nothing.
    """


@hookspec
def troupe_register_handlers(handle: OperatorHandle) -> None:
    """Register callbacks, extra kopf handlers and metrics: timers, daemons, reactions to events.

    Called once at start-up of ``troupe run``, inside its running event loop, after the generic handlers
    are set up and before any watch stream starts (a callback registered here misses no event). Every
    implementation is called (not firstresult), also those of plugins whose operator this process does
    not run: check ``handle.operators``.

    :param handle: the :class:`~troupe.OperatorHandle`: ``handle.on_event(kind, callback)`` for the
        events of a kind the core watches and ``handle.on_listed(kind, callback)`` for the end of its
        initial listing (never a kopf handler of such a kind: a second watch), the kopf registry for
        handlers of other resources (``handle.kopf``), the API client (``handle.kube``),
        ``handle.enqueue(kind, namespace, name)`` to ask for a reconcile, ``handle.objects(kind)`` for
        the watch cache's bodies, ``handle.metrics(operator)`` to add the operator's own metrics, and
        ``handle.operators`` / ``handle.kinds``.
    :return: nothing.
    """
