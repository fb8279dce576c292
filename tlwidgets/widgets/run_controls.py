"""RunControls: Start / Pause / Resume / Stop buttons and a badge showing a run's state.

The dashboard embeds it; it is also usable alone, to drive anything with a start/pause/stop
life cycle from a notebook.
"""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import traitlets
from ipywidgets import CallbackDispatcher

from ..errors import ConfigError, TrainerStateError
from ._static import static_file

__all__ = ["RunControls", "STATES", "ACTIONS", "ENABLED_ACTIONS"]

ACTIONS: tuple[str, ...] = ("start", "pause", "resume", "stop")

# The same table as js/lib/run_controls_state.js (a test compares them): the page disables the
# buttons, and the kernel ignores a press that raced a state change (say, Pause arriving after
# the run finished).
ENABLED_ACTIONS: dict[str, tuple[str, ...]] = {
    "idle": ("start",),
    "running": ("pause", "stop"),
    "paused": ("resume", "stop"),
    "stopping": (),
    "finished": ("start",),
    "stopped": ("start",),
    "failed": ("start",),
}

STATES: tuple[str, ...] = tuple(ENABLED_ACTIONS)


class RunControls(anywidget.AnyWidget):
    """Buttons to start, pause, resume and stop a run, and a badge with the run's state.

    Set ``state`` from the kernel to redraw the page; a press in the page calls every function
    registered with :meth:`on_action` with the action's name.

    >>> import tlwidgets as tlw
    >>> controls = tlw.RunControls()
    >>> controls.on_action(lambda action: print("pressed", action))
    >>> controls.press("start")
    pressed start
    >>> controls.state = "running"
    >>> controls.enabled_actions
    ('pause', 'stop')
    """

    _esm = static_file("run_controls.js")
    _css = static_file("run_controls.css")

    state = traitlets.Unicode(
        "idle",
        help="The run's state: idle, running, paused, stopping, finished, stopped or failed. "
        "Set it from the kernel; the page shows it and enables the buttons it allows.",
    ).tag(sync=True)
    action = traitlets.Unicode(
        "", help="The last action pressed (start, pause, resume or stop); '' before any press."
    ).tag(sync=True)
    action_id = traitlets.Int(
        0,
        help="Counts presses; the page increments it with every press, so pressing the same "
        "button twice is seen twice.",
    ).tag(sync=True)
    disabled = traitlets.Bool(False, help="Disable every button, whatever the state.").tag(
        sync=True
    )
    detail = traitlets.Unicode(
        "", help="A short text shown after the badge (say, 'epoch 2/5')."
    ).tag(sync=True)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._action_handlers = CallbackDispatcher()

    @traitlets.validate("state")
    def _validate_state(self, proposal: traitlets.Bunch) -> str:
        value = proposal["value"]
        if value not in ENABLED_ACTIONS:
            raise ConfigError(
                f"RunControls.state cannot be {value!r}: use one of {', '.join(STATES)}."
            )
        return value

    @traitlets.validate("action")
    def _validate_action(self, proposal: traitlets.Bunch) -> str:
        value = proposal["value"]
        if value and value not in ACTIONS:
            raise ConfigError(
                f"RunControls.action cannot be {value!r}: use one of {', '.join(ACTIONS)}."
            )
        return value

    @property
    def enabled_actions(self) -> tuple[str, ...]:
        """The actions whose buttons are enabled now (none while ``disabled``).

        >>> RunControls(state="paused").enabled_actions
        ('resume', 'stop')
        """
        return () if self.disabled else ENABLED_ACTIONS[self.state]

    def on_action(self, callback: Callable[[str], object], remove: bool = False) -> None:
        """Call ``callback(action)`` on every press; ``remove=True`` unregisters it.

        As with ``ipywidgets.Button.on_click``, an exception in a callback is shown in the
        notebook and the other callbacks still run.

        >>> controls = RunControls()
        >>> presses = []
        >>> controls.on_action(presses.append)
        >>> controls.press("start")
        >>> presses
        ['start']
        """
        self._action_handlers.register_callback(callback, remove=remove)

    def press(self, action: str) -> None:
        """Press a button from the kernel, exactly as a click in the page would.

        >>> controls = RunControls(state="running")
        >>> controls.press("pause")
        >>> controls.action, controls.action_id
        ('pause', 1)
        """
        if action not in ACTIONS:
            raise ConfigError(
                f"RunControls has no {action!r} button: press one of {', '.join(ACTIONS)}."
            )
        if action not in self.enabled_actions:
            allowed = ", ".join(self.enabled_actions) or "nothing"
            raise TrainerStateError(
                f"Cannot {action} while the run is {self.state!r}"
                f"{' and the controls are disabled' if self.disabled else ''}: "
                f"{allowed} can be pressed now. Wait for the state to change first."
            )
        with self.hold_trait_notifications():
            self.action = action
            self.action_id = self.action_id + 1

    @traitlets.observe("action_id")
    def _dispatch_action(self, change: traitlets.Bunch) -> None:
        # A press from the page sets action and action_id together; act on the id, which
        # changes on every press, and only for presses the current state still allows.
        if change["new"] == change["old"] or self.action not in self.enabled_actions:
            if self.action:
                self.log.info("RunControls ignored %r pressed in state %r", self.action, self.state)
            return
        self._action_handlers(self.action)
