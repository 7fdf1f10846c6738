"""
The generic name registry behind routine types, callables and exception classes.

A :class:`Registry` maps stable names to objects of one kind and back. A kind with an
entry-point group also knows the names installed distributions declare there, and loads
each one the first time it is asked for; nothing else is ever imported to resolve a name.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
import threading
import types
from collections.abc import Callable
from typing import Any, Generic, TypeVar, final

from routilux.exceptions import RegistryError


__all__ = ["Registry", "describe", "generation", "module_level_name"]

_T = TypeVar("_T")

_generation_lock = threading.Lock()
_generation = 0


def generation() -> int:
    """
    Return how many times a name of any registry was removed in this process.

    A name never changes what it resolves to while it stays registered (taking a name
    that is in use is an error), so something resolved by name is still right as long as
    this number is unchanged (``run_job`` keeps the flows it rebuilt on that condition).
    """
    with _generation_lock:
        return _generation


def _removed() -> None:
    global _generation
    with _generation_lock:
        _generation += 1


def describe(obj: object) -> str:
    """
    Return ``module.qualname`` of ``obj`` when it has both, else its ``repr`` (for messages).
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if module and qualname:
        return f"{module}.{qualname}"
    return repr(obj)


def module_level_name(obj: object) -> str | None:
    """
    Return ``module:qualname`` when ``obj`` (a function, a builtin or a class) really is
    reachable under that name in its imported module, else ``None``: lambdas, closures,
    local functions, bound methods and instances have no such name.
    """
    if isinstance(obj, types.MethodType):
        return None
    if not (inspect.isfunction(obj) or inspect.isbuiltin(obj) or isinstance(obj, type)):
        return None
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        if target is None:
            return None
        target = inspect.getattr_static(target, part, None)
        if isinstance(target, (staticmethod, classmethod)):
            target = target.__func__
    if target is not obj:
        return None
    return f"{module}:{qualname}"


def _same(existing: object, obj: object) -> bool:
    if existing is obj:
        return True
    try:
        return bool(existing == obj)
    except Exception:  # noqa: BLE001 - an odd __eq__ only means "not the same"
        return False


@final
class Registry(Generic[_T]):
    """
    Stable names for objects of one kind, and the objects by name.

    Every method is thread-safe. An object may have several names; :meth:`name_of` gives
    the first it was registered under. Registering an object again under its name is
    harmless; another object under a taken name is an error.

    Args:
        kind: What a name names, for messages (``"routine type"``, ``"callable"``).
        accepts: Tells whether an object may be registered.
        accepted: What ``accepts`` lets in, for messages (``"Routine subclasses"``).
        missing: Builds the error :meth:`require` raises for a name nothing is registered
            or declared under.
        group: The entry-point group in which distributions declare names
            (``name = "module:attr"``), or ``None``.
        on_add: Called after each registration (without the registry's lock held) with
            the name and the object.
    """

    __slots__ = (
        "_accepted",
        "_accepts",
        "_all_declared",
        "_by_name",
        "_lock",
        "_missing",
        "_names",
        "_names_by_id",
        "_on_add",
        "group",
        "kind",
    )

    def __init__(
        self,
        kind: str,
        *,
        accepts: Callable[[object], bool],
        accepted: str,
        missing: Callable[[object], RegistryError],
        group: str | None = None,
        on_add: Callable[[str, _T], None] | None = None,
    ) -> None:
        #: What a name names, for messages.
        self.kind = kind
        #: The entry-point group in which distributions declare names, or ``None``.
        self.group = group
        self._accepts = accepts
        self._accepted = accepted
        self._missing = missing
        self._on_add = on_add
        self._lock = threading.RLock()
        self._by_name: dict[str, _T] = {}
        # The other way: by the object itself, or by identity for an unhashable object.
        self._names: dict[Any, str] = {}
        self._names_by_id: dict[int, tuple[Any, str]] = {}
        self._all_declared = False

    def __repr__(self) -> str:
        return f"Registry[{self.kind}]"

    def check(self, obj: object, origin: str = "") -> _T:
        """
        Return ``obj`` if it is of this registry's kind.

        Raises:
            RegistryError: It is not (the message names ``origin`` when given).
        """
        if not self._accepts(obj):
            where = f" ({origin})" if origin else ""
            msg = f"only {self._accepted} can be registered, got {obj!r}{where}"
            raise RegistryError(msg)
        return obj  # type: ignore[return-value]  # checked by ``accepts``

    def add(self, name: str, obj: object, origin: str = "") -> _T:
        """
        Register ``obj`` under ``name`` and return it. An object equal to the one already
        registered under ``name`` replaces it.

        Args:
            origin: Where the registration comes from, for messages
                (``"register_routine"``, ``"entry point 'pkg.mod:Cls'"``).

        Raises:
            RegistryError: ``obj`` is not of this kind, ``name`` is not a non-empty
                string, or another object is registered under ``name``.
        """
        value = self.check(obj, origin)
        label: object = name
        if not isinstance(label, str) or not name:
            msg = f"a {self.kind} name must be a non-empty string, got {name!r}"
            raise RegistryError(msg)
        with self._lock:
            existing = self._by_name.get(name)
            if existing is not None and not _same(existing, value):
                where = f" ({origin})" if origin else ""
                msg = (
                    f"{self.kind} name {name!r} is taken by {describe(existing)}; "
                    f"cannot register {describe(value)} under it{where}"
                )
                raise RegistryError(msg)
            self._by_name[name] = value
            self._remember(value, name)
        if self._on_add is not None:
            self._on_add(name, value)
        return value

    def remove(self, name: str) -> None:
        """
        Forget the object registered under ``name`` (nothing happens when there is none).
        Its other names, if any, stay.
        """
        with self._lock:
            obj = self._by_name.pop(name, None)
            if obj is None:
                return
            _removed()
            if self._name_locked(obj) != name:
                return
            try:
                del self._names[obj]
            except TypeError:
                del self._names_by_id[id(obj)]
            for other, value in self._by_name.items():
                if value is obj:
                    self._remember(obj, other)
                    break

    def get(self, name: object) -> _T | None:
        """
        Return the object registered under ``name``, loading the entry point declared
        under it in :attr:`group` when needed; ``None`` when there is neither.
        """
        if not isinstance(name, str):
            return None
        with self._lock:
            obj = self._by_name.get(name)
        if obj is None and self.group is not None and name:
            for ep in importlib.metadata.entry_points(group=self.group, name=name):
                return self.add(name, ep.load(), f"entry point {ep.value!r}")
        return obj

    def require(self, name: object) -> _T:
        """
        Return the object registered (or declared) under ``name``.

        Raises:
            RegistryError: There is none (the error the registry was made with).
        """
        obj = self.get(name)
        if obj is None:
            raise self._missing(name)
        return obj

    def name_of(self, obj: object) -> str | None:
        """
        Return the name ``obj`` was first registered under, or ``None`` (declared entry
        points that were not loaded yet are not looked at).
        """
        with self._lock:
            return self._name_locked(obj)

    @property
    def all_declared_loaded(self) -> bool:
        """
        Whether :meth:`as_dict` has loaded every entry point of :attr:`group`.
        """
        return self._all_declared

    def load_declared(self, wanted: Callable[[str], bool]) -> None:
        """
        Load the entry points of :attr:`group` whose module ``wanted`` accepts and whose
        names are not registered yet.
        """
        if self.group is None:
            return
        for ep in importlib.metadata.entry_points(group=self.group):
            if not wanted(ep.module):
                continue
            with self._lock:
                known = ep.name in self._by_name
            if not known:
                self.add(ep.name, ep.load(), f"entry point {ep.value!r}")

    def as_dict(self) -> dict[str, _T]:
        """
        Return every object by name (a new dict), loading all the declared entry points.
        """
        self.load_declared(lambda _module: True)
        self._all_declared = True
        with self._lock:
            return dict(self._by_name)

    def _remember(self, obj: _T, name: str) -> None:
        # With the lock held: ``name`` becomes the name of ``obj`` unless it has one.
        try:
            self._names.setdefault(obj, name)
        except TypeError:  # unhashable: by identity
            self._names_by_id.setdefault(id(obj), (obj, name))

    def _name_locked(self, obj: object) -> str | None:
        try:
            name = self._names.get(obj)
        except TypeError:  # unhashable: by identity
            name = None
        if name is None:
            entry = self._names_by_id.get(id(obj))
            if entry is not None and entry[0] is obj:
                name = entry[1]
        return name
