"""A disk cache of the warmed state (`Reasoner.load()`), so that a command starts in well
under a second instead of parsing every Turtle file and every SPARQL text again.

What is stored (reasoner/warm.py): a core file (the knowledge base's graphs, closures, value
sets, packs and prepared inference rules; the case guard's derived terms) and one section file
per engine and pack (the compiled `Program`; for pySHACL the parsed shapes and the prepared
SHACL-SPARQL constraints and trace queries), each written when first built.

When it is used (never a reason for a wrong result):

* The key is the sha256 of: this cache's format number; the Python version; the installed
  versions of the libraries whose objects are pickled; the resolved project folder; the path
  and content hash of every file under `ontology/`, `knowledge/` and `shapes/`; and the path
  and content hash of every source file of the `reasoner` package. A change to any data file,
  any line of code or any library rebuilds the cache. The same content hashes are the ones a
  decision record carries (`KnowledgeBase.file_hashes`).
* A file is read only if it starts with the magic line and the key it was written for, and
  its payload has the sha256 stated in its header: a truncated or corrupt file, a file of
  another key, or one that does not unpickle is ignored (and replaced by a fresh build).
* It is written atomically (a temporary file in the cache folder, then `os.replace`), so a
  reader never sees half a file; two processes building at once each write a complete file
  and the last rename wins; neither waits for the other.
* Pickle runs code on load, so only a file the current user owns, in a folder only the
  user can write (created 0700), is read.

Where: `$NECESSITY_CACHE_DIR`, else `$XDG_CACHE_HOME/necessity-reasoner`, else
`~/.cache/necessity-reasoner`. `NECESSITY_CACHE=off` (or 0, no, false) turns it off. A folder
that cannot be created or written only costs the speed-up: the command runs uncached.

rdflib's prepared queries (`rdflib.plugins.sparql.sparql.Query`) hold `CompValue` trees,
dicts whose constructor takes a name and whose `Expr` nodes hold bound methods; the reducer
below rebuilds them (the pickler's own `dispatch_table`, so pickling elsewhere is unaffected).
"""

from __future__ import annotations

import copyreg
import gc
import hashlib
import io
import os
import pickle
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from types import MethodType

#: bump when the layout of the pickled state changes in a way the source hash would not see
FORMAT = 1
MAGIC = b"necessity-reasoner warm-state cache\n"
#: the folders of the project whose files the knowledge base is built from
DATA_FOLDERS = ("ontology", "knowledge", "shapes")
#: the libraries whose objects end up in the pickle (their versions are part of the key)
LIBRARIES = ("rdflib", "pyshacl", "pyparsing", "pyoxigraph", "owlready2")
ENV_MODE = "NECESSITY_CACHE"
ENV_DIR = "NECESSITY_CACHE_DIR"
_OFF = {"off", "0", "no", "false"}
#: files kept in the cache folder (the newest; a core and a few packs per project folder)
MAX_FILES = 40
#: a temporary file older than this is a leftover of a killed builder
_STALE_TMP_SECONDS = 3600


def enabled() -> bool:
    return os.environ.get(ENV_MODE, "on").strip().lower() not in _OFF


def cache_dir() -> Path:
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "necessity-reasoner"


# ---------------------------------------------------------------------------- the key

def _file_digests(folder: Path, base: Path, skip_dirs: tuple[str, ...] = ()) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out.append(f"{path.relative_to(base).as_posix()} {digest}")
    return out


def _library_versions() -> list[str]:
    """`name version` of each library, read from the names of the installed `*.dist-info`
    folders (no import, no importlib.metadata scan: this runs on every start)."""
    from importlib.util import find_spec

    out, listings = [], {}
    for name in LIBRARIES:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            out.append(f"{name} absent")
            continue
        origin = Path(spec.origin)
        site = origin.parent.parent if origin.name == "__init__.py" else origin.parent
        if site not in listings:
            try:
                listings[site] = sorted(os.listdir(site))
            except OSError:
                listings[site] = []
        dists = [d for d in listings[site] if d.endswith(".dist-info")
                 and d.lower().replace("-", "_").startswith(name.lower() + "-")]
        out.append(f"{name} {','.join(dists) or origin}")
    return out


def cache_key(root: Path) -> str:
    """The sha256 (hex) of everything the warmed state depends on (module docstring)."""
    given, root = str(root), Path(root).resolve()
    package = Path(__file__).resolve().parent
    # the folder as given too: the state keeps its paths as given (messages name them)
    lines = [f"format {FORMAT}", f"python {sys.implementation.cache_tag} {sys.version}",
             *_library_versions(), f"root {given} {root}"]
    for name in DATA_FOLDERS:
        lines.append(f"folder {name}")
        if (root / name).is_dir():
            lines.extend(_file_digests(root / name, root))
    lines.append("package")
    lines.extend(_file_digests(package, package, skip_dirs=("__pycache__",)))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def cache_path(root: Path, key: str, section: str | None = None) -> Path:
    """The file of the core state (`kb-<folder digest>-<key>.pickle`) or of one section of it
    (`kb-<folder digest>-<key>.<section digest>.pickle`; reasoner/warm.py)."""
    folder = hashlib.sha256(str(Path(root).resolve()).encode("utf-8")).hexdigest()[:16]
    part = "" if section is None else "." + hashlib.sha256(section.encode()).hexdigest()[:16]
    return cache_dir() / f"kb-{folder}-{key}{part}.pickle"


# ---------------------------------------------------------------------------- pickling

def _rebuild_comp_value(cls, name, func, items, state):
    """Inverse of `_reduce_comp_value`: a CompValue/Expr without running its constructor."""
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    obj.__dict__["name"] = name
    for key, value in items:
        dict.__setitem__(obj, key, value)
    if func is not None:
        obj.__dict__["_evalfn"] = MethodType(func, obj)
    return obj


def _true_filter():
    from rdflib.plugins.sparql.operators import TrueFilter

    return TrueFilter


def _reduce_comp_value(obj):
    """rdflib's parse-tree node: its name, items, attributes, and the plain function behind
    an `Expr`'s bound evaluation method (module-level functions of rdflib's operators, which
    pickle by name). `TrueFilter`, a shared constant holding a lambda, is pickled by name."""
    from rdflib.plugins.sparql.operators import TrueFilter

    if obj is TrueFilter:
        return _true_filter, ()
    state = dict(obj.__dict__)
    name = state.pop("name")
    state.pop("ctx", None)  # evaluation context: only set while an Expr evaluates
    bound = state.pop("_evalfn", None)
    func = getattr(bound, "__func__", None)
    return _rebuild_comp_value, (type(obj), name, func, list(dict.items(obj)), state)


def dumps(obj, shared: dict | None = None) -> bytes:
    """Pickle `obj`; an object of `shared` (token -> object) is written as its token."""
    from rdflib.plugins.sparql.parserutils import CompValue, Expr

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table,
                              CompValue: _reduce_comp_value, Expr: _reduce_comp_value}
    if shared:
        tokens = {id(value): token for token, value in shared.items()}
        pickler.persistent_id = lambda o: tokens.get(id(o))
    pickler.dump(obj)
    return buffer.getvalue()


def loads(payload: bytes, shared: dict | None = None):
    unpickler = pickle.Unpickler(io.BytesIO(payload))
    if shared is not None:
        unpickler.persistent_load = shared.__getitem__
    return unpickler.load()


# ---------------------------------------------------------------------------- read / write

def _header(key: str, payload: bytes) -> bytes:
    return MAGIC + key.encode("ascii") + b"\n" + hashlib.sha256(payload).hexdigest().encode(
        "ascii") + b"\n"


def _trusted(path: Path) -> bool:
    """Only a file of the current user, not writable by others, in a folder likewise."""
    if not hasattr(os, "getuid"):
        return True
    try:
        for item in (path, path.parent):
            st = item.stat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return False
    except OSError:
        return False
    return True


def read(path: Path, key: str, shared: dict | None = None):
    """The object stored for `key`, or None if the file is absent, foreign, of another key,
    truncated, corrupt, or does not unpickle."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(MAGIC) + 65 + 65
    if len(data) < head or not data.startswith(MAGIC) or not _trusted(path):
        return None
    payload = data[head:]
    if data[:head] != _header(key, payload):
        return None
    with paused_gc():
        try:
            return loads(payload, shared)
        except Exception:  # noqa: BLE001 - any failure means "not usable": rebuild
            return None


@contextmanager
def paused_gc(collect_after: bool = False):
    """The cyclic garbage collector paused (then, with `collect_after`, one collection): for
    work that makes many objects and little cyclic garbage. (Un)pickling creates ~10^5 objects
    and nothing to collect, and the collections it would trigger more than double the time of a
    load; a batch block, reasoner/batch/state.py."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
            if collect_after:
                gc.collect()


def write(path: Path, key: str, obj, shared: dict | None = None) -> bool:
    """Store `obj` atomically; False (and nothing left behind) if it cannot be pickled or
    written. Older files of the same project folder and leftover temporary files go."""
    try:
        with paused_gc():
            payload = dumps(obj, shared)
    except Exception:  # noqa: BLE001 - an unpicklable state is served uncached
        return False
    folder = path.parent
    tmp = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(_header(key, payload))
            handle.write(payload)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        return False
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    _prune(path)
    return True


def _prune(keep: Path) -> None:
    """Remove the files of other keys for the same project folder, the oldest files beyond
    `MAX_FILES` (tests and authors create many project folders), and temporary files of
    builders killed long ago (a concurrent builder's fresh temporary file stays)."""
    folder_prefix = keep.name[:len("kb-") + 17]
    key = keep.name[len(folder_prefix):].split(".", 1)[0]
    now = time.time()
    try:
        entries = [(e, e.stat().st_mtime) for e in keep.parent.iterdir()]
    except OSError:
        return
    kept = []
    for entry, mtime in entries:
        name = entry.name
        try:
            if name.startswith(".kb-") and name.endswith(".tmp"):
                if now - mtime > _STALE_TMP_SECONDS:
                    entry.unlink()
            elif name.startswith("kb-") and name.endswith(".pickle"):
                if name.startswith(folder_prefix) and not name.startswith(folder_prefix + key):
                    entry.unlink()
                else:
                    kept.append((mtime, entry))
        except OSError:
            pass
    for _, entry in sorted(kept, reverse=True)[MAX_FILES:]:
        if entry != keep:
            entry.unlink(missing_ok=True)
