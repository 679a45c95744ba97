"""A small OCSF validator that works from the schema's *source* files (no schema server, no network).

The schema files are vendored under ``tests/data/ocsf/<version>/`` (Apache-2.0, from the
ocsf-schema repository; see SOURCE.md there). A class is resolved the way the OCSF server compiles
it:

* its ``extends`` chain (``network_activity`` -> ``network`` -> ``base_event``), child over parent;
* each file's ``$include``s: ``includes/*.json`` add attributes, ``profiles/*.json`` add attributes
  that are only valid when the event names the profile in ``metadata.profiles`` (a class attribute
  with ``"profile": null`` is not gated, e.g. API Activity's own ``api``);
* every attribute's type, array-ness and enum from ``dictionary.json`` (an enum given by the class
  or an include is merged with the dictionary's: ``activity_id`` has 0/99 from the dictionary and
  1..4 from API Activity);
* objects likewise (``extends``, ``$include``, ``constraints``), checked recursively.

``validate(event)`` returns a list of problems, each a string starting with the attribute's path.
Checked: attribute defined for the class / object (or a profile the event declares), profiles
applicable to the class, required attributes (the class's, the declared profiles', nested
objects'), ``at_least_one``/``just_one`` constraints, primitive types (with the dictionary's regex,
range and max length), enum values and their siblings' captions (``activity_name`` = the caption
of ``activity_id`` unless it is 99 "Other"), and the class's identity: ``class_uid`` =
category uid * 1000 + class uid, ``category_uid``, ``type_uid`` = class_uid * 100 + activity_id,
``class_name``, ``category_name``, ``type_name``, ``metadata.version``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_ROOT = Path(__file__).resolve().parents[1] / "data" / "ocsf"
MAX_DEPTH = 10  # nested objects checked this deep (OCSF objects are recursive: process.parent_process...)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of one attribute definition over another; ``enum``s are unions."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class Resolved:
    """A class or object: its attributes (merged with the dictionary) and constraints."""

    name: str
    caption: str
    attributes: dict[str, dict[str, Any]]
    constraints: dict[str, list[str]] = field(default_factory=dict)
    profiles: frozenset[str] = frozenset()  # the profiles the class (or object) may carry
    uid: int | None = None  # classes: the class uid within its category
    category: str | None = None


class OcsfSchema:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = str(self._load("version.json")["version"])
        dictionary = self._load("dictionary.json")
        self.dictionary: dict[str, dict[str, Any]] = dictionary["attributes"]
        self.types: dict[str, dict[str, Any]] = dictionary["types"]["attributes"]
        self.categories: dict[str, dict[str, Any]] = self._load("categories.json")["attributes"]
        self.class_files = {self._load(p)["name"]: p for p in self._rel(root.glob("events/**/*.json"))}
        self.object_files = {self._load(p)["name"]: p for p in self._rel(root.glob("objects/*.json"))}
        self.profile_names = {self._load(p)["name"] for p in self._rel(root.glob("profiles/*.json"))}
        self.classes_by_uid: dict[int, str] = {}
        for name in self.class_files:
            cls = self.resolve_class(name)
            if cls.uid is not None:
                self.classes_by_uid[self.class_uid(cls)] = name

    # -- loading -----------------------------------------------------------------------------------

    def _rel(self, paths: Any) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in paths)

    @cache  # noqa: B019 -- one schema object per test session
    def _load(self, rel: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / rel).read_text())
        return data

    def _own_attributes(self, rel: str) -> dict[str, dict[str, Any]]:
        """A file's attributes with its ``$include``s expanded (profile attributes tagged with it)."""
        raw = self._load(rel).get("attributes", {})
        out: dict[str, dict[str, Any]] = {}
        for inc in raw.get("$include", []):
            included = self._load(inc)
            profile = included["name"] if included.get("meta") == "profile" else None
            for name, spec in self._own_attributes(inc).items():
                spec = {**spec, "profile": profile} if profile else spec
                out[name] = _merge(out.get(name, {}), spec)
        for name, spec in raw.items():
            if name != "$include":
                out[name] = _merge(out.get(name, {}), spec)
        return out

    def _resolve(self, rel: str, files: dict[str, str]) -> Resolved:
        data = self._load(rel)
        parent_name = data.get("extends")
        if parent_name and parent_name in files:
            parent = self._resolve(files[parent_name], files)
            attributes = {k: dict(v) for k, v in parent.attributes.items()}
            constraints = dict(parent.constraints)
            profiles = set(parent.profiles)
            category = parent.category
        else:
            attributes, constraints, profiles, category = {}, {}, set(), None
        for name, spec in self._own_attributes(rel).items():
            attributes[name] = _merge(attributes.get(name, {}), spec)
        constraints.update(data.get("constraints") or {})
        profiles.update(data.get("profiles") or [])
        category = data.get("category", category)
        return Resolved(data["name"], data.get("caption", data["name"]), attributes, constraints,
                        frozenset(profiles), data.get("uid"), category)

    @cache  # noqa: B019
    def resolve_class(self, name: str) -> Resolved:
        cls = self._resolve(self.class_files[name], self.class_files)
        if name == "base_event":
            cls.uid = 0
        cls.attributes = {k: self._with_dictionary(k, v) for k, v in cls.attributes.items()}
        # As the OCSF server compiles a class: its class_uid and category_uid enums are its own values.
        category = self.categories.get(str(cls.category), {"caption": "Uncategorized"})
        cls.attributes["category_uid"]["enum"] = {str(self.category_uid(cls)): {"caption": category["caption"]}}
        cls.attributes["class_uid"]["enum"] = {str(self.class_uid(cls)): {"caption": cls.caption}}
        return cls

    @cache  # noqa: B019
    def resolve_object(self, name: str) -> Resolved:
        obj = self._resolve(self.object_files[name], self.object_files)
        obj.attributes = {k: self._with_dictionary(k, v) for k, v in obj.attributes.items()}
        return obj

    def _with_dictionary(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return _merge(self.dictionary.get(name, {}), spec)

    def category_uid(self, cls: Resolved) -> int:
        if cls.category in self.categories:
            return int(self.categories[cls.category]["uid"])
        return 0  # base_event: "other", Uncategorized

    def class_uid(self, cls: Resolved) -> int:
        return self.category_uid(cls) * 1000 + int(cls.uid or 0)

    # -- validation --------------------------------------------------------------------------------

    def validate(self, event: Any) -> list[str]:
        if not isinstance(event, dict):
            return ["<event>: not an object"]
        errors: list[str] = []
        class_uid = event.get("class_uid")
        name = self.classes_by_uid.get(class_uid) if isinstance(class_uid, int) else None
        if name is None:
            return [f"class_uid: {event.get('class_uid')!r} is not a class of OCSF {self.version}"]
        cls = self.resolve_class(name)
        raw_metadata = event.get("metadata")
        metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
        declared = metadata.get("profiles") or []
        if not isinstance(declared, list):
            declared = []
        profiles: set[str] = set()
        for p in declared:
            if p not in self.profile_names:
                errors.append(f"metadata.profiles: unknown profile {p!r}")
            elif p not in cls.profiles:
                errors.append(f"metadata.profiles: profile {p!r} does not apply to {cls.caption}")
            else:
                profiles.add(p)
        errors += self._check_attributes(event, cls, profiles, "", 0)
        errors += self._check_identity(event, cls)
        if metadata.get("version") != self.version:
            errors.append(f"metadata.version: {metadata.get('version')!r}, expected {self.version!r}")
        return errors

    def _check_identity(self, event: dict[str, Any], cls: Resolved) -> list[str]:
        """type_uid and type_name (category_uid, class_uid and their names are enum/sibling checks)."""
        errors = []
        class_uid = self.class_uid(cls)
        activity_id = event.get("activity_id")
        if isinstance(activity_id, int) and event.get("type_uid") != class_uid * 100 + activity_id:
            errors.append(f"type_uid: {event.get('type_uid')!r}, expected {class_uid * 100 + activity_id}")
        enum = cls.attributes.get("activity_id", {}).get("enum", {})
        if "type_name" in event and str(activity_id) in enum:
            activity = event.get("activity_name") if activity_id == 99 else enum[str(activity_id)]["caption"]
            if event["type_name"] != f"{cls.caption}: {activity}":
                errors.append(f"type_name: {event['type_name']!r}, expected {cls.caption + ': ' + str(activity)!r}")
        return errors

    def _check_attributes(self, value: dict[str, Any], owner: Resolved, profiles: set[str], path: str,
                          depth: int) -> list[str]:
        errors: list[str] = []
        where = f"{path}." if path else ""
        for key, item in value.items():
            spec = owner.attributes.get(key)
            if spec is None:
                errors.append(f"{where}{key}: not an attribute of {owner.caption}")
                continue
            gate = spec.get("profile")
            if gate and gate not in profiles:
                errors.append(f"{where}{key}: attribute of the {gate!r} profile, not declared in metadata.profiles")
            if item is None:
                continue  # OCSF treats null as absent
            errors += self._check_value(item, spec, profiles, f"{where}{key}", depth)
        for key, spec in owner.attributes.items():
            gate = spec.get("profile")
            if spec.get("requirement") == "required" and (not gate or gate in profiles) and value.get(key) is None:
                errors.append(f"{where}{key}: required by {owner.caption}, missing")
        for kind, names in owner.constraints.items():
            present = [n for n in names if value.get(n) is not None]
            if kind == "at_least_one" and not present:
                errors.append(f"{path or '<event>'}: {owner.caption} needs at least one of {names}")
            if kind == "just_one" and len(present) != 1:
                errors.append(f"{path or '<event>'}: {owner.caption} needs exactly one of {names}, has {present}")
        errors += self._check_siblings(value, owner, where)
        return errors

    @staticmethod
    def _check_siblings(value: dict[str, Any], owner: Resolved, where: str) -> list[str]:
        """``status`` is the caption of ``status_id`` (any text when the id is 99 "Other")."""
        errors = []
        for key, spec in owner.attributes.items():
            sibling, enum = spec.get("sibling"), spec.get("enum")
            if not sibling or not enum or key not in value or sibling not in value or value[key] == 99:
                continue
            caption = enum.get(str(value[key]), {}).get("caption")
            if caption is not None and value[sibling] != caption:
                errors.append(f"{where}{sibling}: {value[sibling]!r}, the caption of {key}={value[key]} is {caption!r}")
        return errors

    def _check_value(self, item: Any, spec: dict[str, Any], profiles: set[str], path: str, depth: int) -> list[str]:
        if spec.get("is_array"):
            if not isinstance(item, list):
                return [f"{path}: expected an array"]
            errors: list[str] = []
            for i, element in enumerate(item):
                errors += self._check_one(element, spec, profiles, f"{path}[{i}]", depth)
            return errors
        return self._check_one(item, spec, profiles, path, depth)

    def _check_one(self, item: Any, spec: dict[str, Any], profiles: set[str], path: str, depth: int) -> list[str]:
        type_name = str(spec.get("type", ""))
        if type_name in self.object_files:
            if not isinstance(item, dict):
                return [f"{path}: expected an object ({type_name})"]
            if depth >= MAX_DEPTH:
                return []
            return self._check_attributes(item, self.resolve_object(type_name), profiles, path, depth + 1)
        if type_name == "object":  # unmapped: free-form
            return [] if isinstance(item, dict) else [f"{path}: expected an object"]
        errors = self._check_primitive(item, type_name, path)
        enum = spec.get("enum")
        if enum and not errors and str(item) not in enum:
            errors.append(f"{path}: {item!r} is not one of {sorted(enum, key=lambda k: (len(k), k))}")
        return errors

    def _check_primitive(self, item: Any, type_name: str, path: str) -> list[str]:
        chain = []
        t: str | None = type_name
        while t:  # hostname_t -> string_t
            chain.append(t)
            t = self.types.get(t, {}).get("type")
        base = chain[-1] if chain else ""
        ok = {
            "string_t": isinstance(item, str),
            "integer_t": isinstance(item, int) and not isinstance(item, bool),
            "long_t": isinstance(item, int) and not isinstance(item, bool),
            "float_t": isinstance(item, int | float) and not isinstance(item, bool),
            "boolean_t": isinstance(item, bool),
            "json_t": True,
        }.get(base)
        if ok is None:
            return [f"{path}: unknown type {type_name!r}"]
        if not ok:
            return [f"{path}: {item!r} is not {type_name}"]
        errors = []
        for t in chain:
            info = self.types.get(t, {})
            if "regex" in info and isinstance(item, str) and not re.search(info["regex"], item):
                errors.append(f"{path}: {item!r} does not match {t}")
            if "max_len" in info and isinstance(item, str) and len(item) > int(info["max_len"]):
                errors.append(f"{path}: longer than {info['max_len']} ({t})")
            if "range" in info and isinstance(item, int):
                lo, hi = info["range"]
                if not lo <= item <= hi:
                    errors.append(f"{path}: {item} outside {t} range [{lo}, {hi}]")
        return errors


@cache
def schema(version: str = "1.3.0") -> OcsfSchema:
    return OcsfSchema(SCHEMA_ROOT / version)
