"""Small validation helpers for TOML files: every error names the file, the key and the reason."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any


class SpecError(ValueError):
    """A spec or rule file is malformed; the message names the file, key and reason."""

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        self.path = str(path)
        self.key = key
        self.reason = reason
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {reason}")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every read or syntax problem into a SpecError."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SpecError(path, "", "file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(path, "", f"not valid TOML ({error})") from None
    except UnicodeDecodeError as error:
        raise SpecError(path, "", f"not UTF-8 (byte {error.start}: {error.object[error.start : error.start + 1]!r})") from None
    except RecursionError:
        raise SpecError(path, "", "not valid TOML (arrays or tables nested too deeply to be read)") from None
    except OSError as error:
        raise SpecError(path, "", f"cannot be read ({error.strerror})") from None


class Table:
    """A view of one TOML table that checks each field as it is read and rejects unknown keys."""

    def __init__(self, path: Path | str, prefix: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise SpecError(path, prefix, f"must be a table, got {type(data).__name__}")
        self.path = path
        self.prefix = prefix
        self.data = data
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        if not name:
            return self.prefix
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> SpecError:
        return SpecError(self.path, self.key(name), reason)

    def _get(self, name: str, default: Any) -> Any:
        self._seen.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                raise self.fail(name, "is required")
            return default
        return self.data[name]

    def integer(self, name: str, default: Any = None, *, low: int | None = None, high: int | None = None) -> int:
        value = self._get(name, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, got {value!r}")
        self._check_range(name, value, low, high)
        return value

    def number(self, name: str, default: Any = None, *, low: float | None = None, high: float | None = None) -> float:
        value = self._get(name, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, got {value!r}")
        self._check_range(name, value, low, high)
        return float(value)

    def string(self, name: str, default: Any = None, *, choices: tuple[str, ...] | None = None) -> str:
        value = self._get(name, _REQUIRED if default is None else default)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def raw(self, name: str, default: Any) -> Any:
        """The value as TOML gave it (any type; the caller checks it), or `default`."""
        return self._get(name, default)

    def table(self, name: str, default: Any = None) -> Table:
        return Table(self.path, self.key(name), self._get(name, _REQUIRED if default is None else default))

    def array(self, name: str, default: Any = None) -> list[Any]:
        value = self._get(name, _REQUIRED if default is None else default)
        if not isinstance(value, list):
            raise self.fail(name, f"must be an array, got {value!r}")
        return value

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            raise self.fail(unknown[0], "is not a known key")

    def _check_range(self, name: str, value: float, low: float | None, high: float | None) -> None:
        if low is not None and value < low:
            raise self.fail(name, f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise self.fail(name, f"must be <= {high}, got {value}")


_REQUIRED = object()


def limits(low: float | None = None, high: float | None = None, choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Field metadata for `read_dataclass`: the range of a number, or the choices of a string."""
    return {"low": low, "high": high, "choices": choices}


def read_dataclass[T](table: Table, cls: type[T], special: dict[str, Callable[[Table, str, Any], Any]] | None = None) -> T:
    """Build `cls` from a TOML table: each field is read with its default's type (int, float or str)
    and the `limits` in its metadata; `special` readers handle other fields; unknown keys are rejected."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        default = f.default if f.default_factory is MISSING else f.default_factory()
        bounds = f.metadata or limits()
        if special and f.name in special:
            values[f.name] = special[f.name](table, f.name, default)
        elif isinstance(default, int) and not isinstance(default, bool):
            values[f.name] = table.integer(f.name, default, low=bounds["low"], high=bounds["high"])
        elif isinstance(default, float):
            values[f.name] = table.number(f.name, default, low=bounds["low"], high=bounds["high"])
        elif isinstance(default, str):
            values[f.name] = table.string(f.name, default, choices=bounds["choices"])
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no reader for {type(default).__name__}")
    table.reject_unknown()
    return cls(**values)
