"""The definition language's vocabulary: the keys each kind of node accepts, the ones it
needs, and what a name looks like.

One table read by the loader (which refuses any other key, with a "did you mean"), by the JSON
Schema (``definitions.schema``) and by docs/definitions.md (a test checks that the page lists
exactly these), so the three cannot drift apart.
"""

from __future__ import annotations

import re

# The keys each kind of node accepts. docs/definitions.md lists exactly these (a test checks).
KEYS: dict[str, tuple[str, ...]] = {
    "definition": ("name", "version", "title", "description", "roles", "start_roles", "data",
                   "initial", "states", "transitions", "deadlines", "timers", "templates",
                   "signals", "start_signals", "reactions", "reference_prefix"),
    "role": ("label", "description", "address", "directory"),
    "data field": ("label", "type", "required", "values", "labels", "description", "readonly"),
    "state": ("label", "description", "final"),
    "transition": ("event", "label", "from", "to", "roles", "when", "set", "record", "notify",
                   "description", "signal"),
    "signal": ("signal", "when"),
    "reaction": ("signal", "start", "fire", "when", "set", "description"),
    "notify": ("to", "template", "when"),
    "deadline": ("label", "live_in", "anchor", "after", "before", "roll", "cancelled_by", "met_by",
                 "description", "rules", "kind"),
    "deadline rule": ("when", "anchor", "after", "before"),
    "timer": ("name", "deadline", "state", "before", "after", "at", "notify", "fire", "repeat",
              "description"),
    "repeat": ("every", "max"),
    "template": ("subject", "body", "urgent", "description"),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "definition": ("name", "version", "initial", "states", "transitions"),
    "data field": ("type",),
    "transition": ("event", "from"),
    "notify": ("to", "template"),
    "deadline": ("live_in",),
    "timer": ("name",),
    "repeat": ("every",),
    "template": ("subject", "body"),
    "signal": ("signal",),
    "reaction": ("signal",),
}

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


__all__ = ["KEYS", "REQUIRED_KEYS", "IDENTIFIER"]
