"""The BBF data models (Device:2 and InternetGatewayDevice:1 "full" XML), indexed for
``acsd profile check``: which objects and parameters exist, their types, whether they are
writable and secured, and their enumerations. Only the check needs them, never a session.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

MODEL_FILES: dict[str, str] = {
    "Device.": "tr-181-2-17-0-cwmp-full.xml",
    "InternetGatewayDevice.": "tr-098-1-8-0-full.xml",
}
_XSD = {
    name: "xsd:" + name
    for name in (
        "string",
        "boolean",
        "unsignedInt",
        "int",
        "long",
        "unsignedLong",
        "dateTime",
        "base64",
        "hexBinary",
        "decimal",
    )
}


@dataclass(frozen=True, slots=True)
class ModelParam:
    type: str
    writable: bool
    secured: bool
    enum: frozenset[str] | None
    #: a list (OperatingStandards "b,g,n"): ``enum`` holds the values of its items
    is_list: bool = False


@dataclass
class DataModel:
    name: str  # "Device:2.17"
    objects: dict[str, bool]  # "{i}" names -> writable (AddObject/DeleteObject allowed)
    params: dict[str, ModelParam]


#: the service objects a CPE may hold below ``Device.Services.`` (TR-181) or
#: ``InternetGatewayDevice.Services.`` (TR-098), each defined by a model of its own that
#: acsd does not ship: the root models declare ``Services.`` empty. Paths below them are
#: left unchecked (a warning), not refused: the operator cannot make them pass.
SERVICE_MODELS: dict[str, str] = {
    "VoiceService": "TR-104",
    "STBService": "TR-135",
    "StorageService": "TR-140",
    "FAPService": "TR-196",
}


@dataclass(frozen=True, slots=True)
class ServicePath:
    """A path below ``ROOT.Services.NAME`` where the loaded model has no such object."""

    obj: str  # "Device.Services.VoiceService."
    name: str  # "VoiceService"
    #: the BBF document that defines it ("TR-104"); None: a name acsd does not know
    model: str | None


def service_path(path: str, dm: DataModel) -> ServicePath | None:
    """The service object ``path`` lies below when ``dm`` does not define it (None: not
    below ``ROOT.Services.``, a vendor's ``X_`` service, or one the model has)."""
    segments = path.split(".")
    if len(segments) < 4 or segments[1] != "Services" or not segments[2]:
        return None
    name = segments[2]
    if name.startswith("X_") or name.startswith("{"):
        return None  # (a vendor's own service: hangs from Services., which is the model's)
    obj = ".".join(segments[:3]) + "."
    if obj in dm.objects or obj + "{i}." in dm.objects:
        return None
    return ServicePath(obj, name, SERVICE_MODELS.get(name))


def norm(path: str) -> str:
    """Instance numbers (and `*`) -> "{i}", as the BBF XML names objects."""
    return ".".join("{i}" if s == "*" or s.isdigit() else s for s in path.split("."))


def _tag(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _type_of(syntax: etree._Element, datatypes: dict[str, etree._Element]) -> str:
    if any(_tag(c) == "list" for c in syntax):
        return "xsd:string"  # a list travels as one comma-separated string
    for child in syntax:
        tag = _tag(child)
        if tag in _XSD:
            return _XSD[tag]
        if tag == "dataType":
            ref = child.get("ref") or child.get("base")
            target = datatypes.get(ref or "")
            return _type_of(target, datatypes) if target is not None else "xsd:string"
    base = datatypes.get(syntax.get("base") or "")
    return _type_of(base, datatypes) if base is not None else "xsd:string"


class DataModelError(ValueError):
    """A data model file that cannot be used: "FILE:LINE: what", one line."""


def _parse(path: Path) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    try:
        return etree.parse(str(path), parser).getroot()
    except etree.XMLSyntaxError as exc:
        raise DataModelError(f"{path}:{exc.lineno}: not well-formed XML: {exc.msg}") from None
    except OSError as exc:  # lxml's own for an unreadable file, or the OS's
        raise DataModelError(f"{path}: cannot read: {exc}") from None


@functools.cache
def load_datamodel(path: Path) -> DataModel:
    """Objects and parameters of one BBF "full" XML file (parsed once per process).
    Raises :class:`DataModelError` for a file that is no such data model."""
    doc = _parse(path)
    datatypes = {d.get("name", ""): d for d in doc if _tag(d) == "dataType"}
    model = next((el for el in doc if _tag(el) == "model"), None)
    if model is None:
        raise DataModelError(f"{path}: not a BBF data model (no <model> element)")
    dm = DataModel(model.get("name", path.name), {}, {})
    refs: list[tuple[str, str]] = []
    for obj in (el for el in model if _tag(el) == "object"):
        oname = obj.get("name", "")
        dm.objects[oname] = obj.get("access") == "readWrite"
        for param in (el for el in obj if _tag(el) == "parameter"):
            name = oname + param.get("name", "")
            syntax = next((el for el in param if _tag(el) == "syntax"), None)
            if syntax is None:
                continue
            values = frozenset(e.get("value", "") for e in syntax.iter("{*}enumeration"))
            for ref in syntax.iter("{*}enumerationRef"):
                refs.append((name, oname + ref.get("targetParam", "")))
            dm.params[name] = ModelParam(
                type=_type_of(syntax, datatypes),
                writable=param.get("access") == "readWrite",
                secured=syntax.get("secured") == "true" or syntax.get("hidden") == "true",
                enum=values or None,
                is_list=any(_tag(c) == "list" for c in syntax),
            )
    for name, source in refs:
        # e.g. ModeEnabled takes the values of ModesSupported
        if source in dm.params:
            old = dm.params[name]
            dm.params[name] = ModelParam(
                old.type, old.writable, old.secured, dm.params[source].enum, old.is_list
            )
    return dm


def find_datamodels(given: Path | None = None) -> Path | None:
    """The directory holding both BBF files: ``given``, else $ACSD_DATAMODELS, else
    ../shared/datamodels from the current directory or from the repository."""
    if given is not None:
        candidates = [given]
    else:
        env = os.environ.get("ACSD_DATAMODELS")
        candidates = [Path(env)] if env else []
        candidates += [
            Path.cwd() / ".." / "shared" / "datamodels",
            Path(__file__).resolve().parents[3] / ".." / "shared" / "datamodels",
        ]
    for folder in candidates:
        if all((folder / f).is_file() for f in MODEL_FILES.values()):
            return folder.resolve()
    return None
