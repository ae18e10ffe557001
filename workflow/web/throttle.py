"""Sign-in throttling that slows a guesser without letting a stranger lock a user out.

The old rule (five wrong passwords lock the account for everyone for 15 minutes) was a denial
of service anyone could trigger, and it answered differently for names that exist. Here
failures are counted under four keys, each with its own growing delay, and the next attempt
under a key is accepted only once its delay has passed (an attempt before that is refused
without looking at the password, and does not count):

- ``pair`` (account, address): the guesser's own attempts on one account. 3 free failures,
  then 1 s, 2 s, 4 s ... up to 15 minutes.
- ``address``: one address trying many names (spraying). 20 free, then the same growth.
- ``account`` (all addresses): a botnet spread over many addresses. 10 free, then growing up
  to 5 minutes, and it applies **only to an address that has itself failed on this account**:
  the real user's first attempt from their own address always goes through, whatever
  strangers did.
- ``device`` (account, a browser that signed in as this user before): such a browser is
  judged only by its own failures, so neither strangers' failures on the account nor a shared
  address (an office NAT) can slow it.

A success clears the pair, account and device counts; counts older than a day start again.
Keys are SHA-256 hashes of the lower-cased typed name and the address, so nothing the user
typed is stored in clear, and an unknown name is counted, delayed and answered exactly as a
known one (the same argon2 work is done either way).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from icsflow.storage.sessions import ThrottleStore

WINDOW = timedelta(days=1)
PURGE_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Limit:
    """``free`` failures cost nothing; the next waits ``base`` seconds, doubling to ``cap``."""

    free: int
    base: float
    cap: float

    def delay(self, failures: int) -> float:
        if failures <= self.free:
            return 0.0
        return float(min(self.base * 2 ** min(failures - self.free - 1, 30), self.cap))


PAIR = Limit(3, 1.0, 900.0)
ADDRESS = Limit(20, 1.0, 900.0)
ACCOUNT = Limit(10, 1.0, 300.0)
DEVICE = Limit(5, 1.0, 900.0)


def _key(kind: str, *parts: str) -> str:
    return hashlib.sha256("\0".join((kind, *parts)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Keys:
    pair: str
    address: str
    account: str
    device: str | None  # set when the browser signed in as this account before


def keys_for(name: str, ip: str, device_known: bool, device_id: str = "") -> Keys:
    account = name.strip().casefold()
    return Keys(_key("pair", account, ip), _key("address", ip), _key("account", account),
                _key("device", account, device_id) if device_known else None)


class Throttle:
    """The policy above over a ``ThrottleStore``."""

    def __init__(self, store: ThrottleStore, *, pair: Limit = PAIR, address: Limit = ADDRESS,
                 account: Limit = ACCOUNT, device: Limit = DEVICE) -> None:
        self.store = store
        self.limits = {"pair": pair, "address": address, "account": account, "device": device}
        self._purged: datetime | None = None

    def wait(self, keys: Keys, now: datetime) -> float:
        """Seconds until an attempt under these keys is accepted (0: now)."""
        if keys.device is not None:
            states = self.store.states([keys.device], now - WINDOW)
            applying = [keys.device]
        else:
            states = self.store.states([keys.pair, keys.address, keys.account], now - WINDOW)
            applying = [keys.pair, keys.address]
            if keys.pair in states:  # this address failed on this account before
                applying.append(keys.account)
        waits = [(states[k].next_allowed_at - now).total_seconds() for k in applying
                 if k in states]
        return max([0.0, *waits])

    def failed(self, keys: Keys, now: datetime) -> None:
        delays: dict[str, Callable[[int], float]]
        if keys.device is not None:
            delays = {keys.device: self.limits["device"].delay}
        else:
            delays = {keys.pair: self.limits["pair"].delay,
                      keys.address: self.limits["address"].delay,
                      keys.account: self.limits["account"].delay}
        self.store.failed(delays, now, now - WINDOW)
        if self._purged is None or now - self._purged > PURGE_EVERY:
            self._purged = now  # counts past the window are dead: keep the table small
            self.store.purge(now - WINDOW)

    def succeeded(self, keys: Keys) -> None:
        self.store.clear([k for k in (keys.pair, keys.account, keys.device) if k])

    def purge(self, now: datetime) -> int:
        return self.store.purge(now - WINDOW)


__all__ = ["Throttle", "Limit", "Keys", "keys_for", "PAIR", "ADDRESS", "ACCOUNT", "DEVICE",
           "WINDOW"]
