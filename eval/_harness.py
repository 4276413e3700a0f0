# mypy: ignore-errors
# (stdlib-only code for the sandbox image's interpreter, left unannotated; its behaviour is
# covered by tests/eval/test_harness.py and the docker gates)
"""codekiln-eval's harness for one (solution, dataset part) job, run inside the sandbox.

This file is sent as the job's ``code``; the job's ``tests`` is one ``def test_*()`` that calls
``_codekiln_job()``, so the sandbox decides pass/fail from its own result record (an ``exit(0)``
or a killed process is a fail). It is stdlib-only and runs on the sandbox image's python3.

Two modes, chosen by ``codekiln_job.json``:

- ``reference``: run the canonical solution on every input, time each call, and print one
  record between markers: the run times (JSON) and the expected outputs (an opaque blob the
  host stores and hands back; the host never unpickles it). An expected output is shipped as a
  value when it is small, holds a float, or a special oracle needs it; otherwise as a digest of
  a canonical encoding under which two builtin values are equal exactly when ``==`` says so.
- ``check``: run a candidate solution on every input with evalplus's per-input time limits and
  per-part budget (CPU time), stop at the first failing input (evalplus's default), print a
  progress record between markers, and raise ``AssertionError("codekiln-eval input I: reason")``
  (a failed input) or ``AssertionError("codekiln-eval timeout at input I: ...")`` (the part's
  budget is spent) so the sandbox records the test as failed.

Outputs are compared with evalplus's semantics (``exp == out``, atol/rtol, its special
oracles), but only after the output has been rebuilt from builtin types through the builtin
types' own C methods: an object whose ``__eq__`` always answers True, or a subclass that
overrides it, never reaches a comparison. Builtins the harness uses are bound when this file
loads, before the candidate runs, so monkeypatching ``builtins`` does not reach them. Not
defended: a candidate that walks the interpreter's memory to find the expected values
(see docs/eval.md).

One file on purpose, though over 500 lines: it is one concept, checking one job's outputs the
way evalplus does (rebuild an output from builtin types, digest or compare it, under time
limits), and it travels as one: the sandbox runs a job's ``code`` as a single module, so any
part split off would have to be shipped with every job as an extra file and imported from the
job's folder, the folder the candidate's own files share.
"""

import base64
import contextlib
import copy
import hashlib
import json
import math
import os
import pickle
import signal
import sys
import time
import zlib

JOB_FILE = "codekiln_job.json"
SOLUTION_FILE = "codekiln_solution.py"
INPUTS_FILE = "codekiln_inputs.b64"
EXPECTED_FILE = "codekiln_expected.b64"
REF_BEGIN = "@@codekiln-ref-begin@@"
REF_END = "@@codekiln-ref-end@@"
FAIL_PREFIX = "codekiln-eval input "
TIMEOUT_PREFIX = "codekiln-eval timeout at input "
PROGRESS_BEGIN = "@@codekiln-progress-begin@@"
PROGRESS_END = "@@codekiln-progress-end@@"
VALUE_LIMIT_BYTES = 2048
MAX_DEPTH = 200

# Bound now, before any candidate code runs.
_type = type
_len = len
_set = set
_frozenset = frozenset
_map = map
_zip = zip
_abs = abs
_list = list
_tuple = tuple
_dict = dict
_str = str
_bytes = bytes
_int = int
_float = float
_bool = bool
_complex = complex
_repr = repr
_hex = hex
_sorted = sorted
_slice = slice
_issubclass = issubclass
_getattr = getattr
_BaseException = BaseException
_isfinite = math.isfinite
_isinf = math.isinf
_isnan = math.isnan
_pow = math.pow
_sqrt = math.sqrt
_cpu = time.process_time
_setitimer = signal.setitimer
_signal_fn = signal.signal
# Limits are on the process's CPU time (SIGPROF), not wall time: other load on the machine
# does not make a correct solution fail. A candidate that sleeps is stopped by the job's wall
# deadline instead (a "timeout" verdict).
_ITIMER = signal.ITIMER_PROF
_SIGNAL = signal.SIGPROF
_sha256 = hashlib.sha256
_dumps = pickle.dumps
_loads = pickle.loads
_deepcopy = copy.deepcopy
_dict_items = dict.items
_list_copy = list.copy
_tuple_getitem = tuple.__getitem__
_dict_copy = dict.copy
_set_copy = set.copy
_frozenset_copy = frozenset.copy
_int_index = int.__index__
_float_float = float.__float__
_str_str = str.__str__
_bytes_getitem = bytes.__getitem__
_complex_real = complex.real.__get__
_complex_imag = complex.imag.__get__
_float_is_integer = float.is_integer
_sys = sys

_NONE = type(None)
_ATOMS = frozenset({_NONE, bool, int, float, complex, str, bytes})
_HEAPTYPE = 1 << 9

# evalplus 0.3.1 eval/_special_oracle.py: result semantics kept, code not copied.
_MBPP_NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})
_MBPP_SET_EQ = frozenset(
    {
        "similar_elements",
        "find_char_long",
        "common_in_nested_lists",
        "extract_singly",
        "larg_nnum",
        "intersection_array",
        "find_dissimilar",
        "Diff",
    }
)
_MBPP_SPECIAL = frozenset({"are_equivalent", "sum_div", "surface_Area", "digit_distance_nums"})


class Untrusted(Exception):
    """An output holds a value whose equality the harness cannot trust."""


class _TimeLimit(BaseException):
    """A call ran past its time limit (a BaseException so ``except Exception`` cannot eat it)."""


def normalise(value, depth=0):
    """Rebuild ``value`` from exact builtin types, reading subclasses through base C methods."""
    if depth > MAX_DEPTH:
        raise Untrusted(f"output nested deeper than {MAX_DEPTH} levels")
    t = _type(value)
    if t in _ATOMS:
        return value
    if t is list or t is tuple:
        if _set(_map(_type, value)) <= _ATOMS:
            return value
        items = [normalise(x, depth + 1) for x in value]
        return items if t is list else _tuple(items)
    if t is dict:
        return {normalise(k, depth + 1): normalise(v, depth + 1) for k, v in _dict_items(value)}
    if t is set or t is frozenset:
        if _set(_map(_type, value)) <= _ATOMS:
            return value
        return t(normalise(x, depth + 1) for x in value)
    if not (t.__flags__ & _HEAPTYPE) and t.__module__ == "numpy":
        # A static C type from numpy (a Python class is always a heap type, so this cannot be
        # faked, and a static type's methods cannot be reassigned).
        if t.__name__ == "ndarray":
            raise Untrusted("returned a numpy.ndarray; its == is elementwise")
        return normalise(value.item(), depth + 1)
    if _issubclass(t, int):
        return _int_index(value)
    if _issubclass(t, float):
        return _float_float(value)
    if _issubclass(t, str):
        return _str_str(value)
    if _issubclass(t, bytes):
        return _bytes_getitem(value, _slice(None))
    if _issubclass(t, complex):
        return _complex(_complex_real(value), _complex_imag(value))
    if _issubclass(t, list):
        return [normalise(x, depth + 1) for x in _list_copy(value)]
    if _issubclass(t, tuple):
        return _tuple(normalise(x, depth + 1) for x in _tuple_getitem(value, _slice(None)))
    if _issubclass(t, dict):
        return {
            normalise(k, depth + 1): normalise(v, depth + 1)
            for k, v in _dict_items(_dict_copy(value))
        }
    if _issubclass(t, frozenset):
        return _frozenset(normalise(x, depth + 1) for x in _frozenset_copy(value))
    if _issubclass(t, set):
        return _set(normalise(x, depth + 1) for x in _set_copy(value))
    raise Untrusted(f"returned a {t.__module__}.{t.__qualname__}, which cannot be compared safely")


def digest(value):
    """sha256 of the canonical encoding of a normalised value (equal values, equal digests)."""
    h = _sha256()
    _feed(h, value, 0)
    return h.hexdigest()


def _feed(h, v, depth):
    if depth > MAX_DEPTH:
        raise Untrusted(f"output nested deeper than {MAX_DEPTH} levels")
    t = _type(v)
    if t is int or t is bool:
        # hex: decimal str() of a huge int is capped (sys.set_int_max_str_digits)
        h.update(b"i" + _hex(v).encode() + b";")
    elif t is str:
        data = v.encode("utf-8", "surrogatepass")
        h.update(b"s%d:" % _len(data))
        h.update(data)
    elif t is _NONE:
        h.update(b"N;")
    elif t is float:
        if _isfinite(v) and _float_is_integer(v):
            h.update(b"i" + _hex(_int(v)).encode() + b";")
        else:
            # Never equal to anything a digest is taken of (those hold no float); nan is
            # made unique so that it equals nothing, as in Python.
            h.update(b"f" + _repr(v).encode() + (b"%d" % id(v) if _isnan(v) else b"") + b";")
    elif t is complex:
        if _complex_imag(v) == 0:
            _feed(h, _complex_real(v), depth)
        else:
            h.update(b"c" + _repr(v).encode() + b";")
    elif t is bytes:
        h.update(b"b%d:" % _len(v))
        h.update(v)
    elif t is list or t is tuple:
        h.update((b"L%d[" if t is list else b"T%d(") % _len(v))
        if v and _set(_map(_type, v)) == {int}:
            h.update(b"i" + ";i".join(_map(_hex, v)).encode() + b";")
        else:
            for x in v:
                _feed(h, x, depth + 1)
        h.update(b"]")
    elif t is dict:
        pairs = _sorted((_sub_digest(k, depth), _sub_digest(x, depth)) for k, x in v.items())
        h.update(b"D%d{" % _len(pairs))
        for k, x in pairs:
            h.update(k.encode() + b":" + x.encode() + b",")
        h.update(b"}")
    elif t is set or t is frozenset:
        elems = _sorted(_sub_digest(x, depth) for x in v)
        h.update(b"S%d{" % _len(elems))
        for e in elems:
            h.update(e.encode() + b",")
        h.update(b"}")
    else:
        raise Untrusted(f"cannot encode a {t.__qualname__}")


def _sub_digest(v, depth):
    h = _sha256()
    _feed(h, v, depth + 1)
    return h.hexdigest()


def is_floats(x):
    """evalplus's test for a float expected value: a float, or a non-empty sequence of floats."""
    if _type(x) is float:
        return True
    if _type(x) in (list, tuple) and x:
        return all(_type(i) is float for i in x)
    return False


def _isclose(a, b, rtol, atol):
    if _isnan(_abs(a)) or _isnan(_abs(b)):
        return False
    if _isinf(_abs(a)) or _isinf(_abs(b)):
        return a == b
    return _abs(a - b) <= atol + rtol * _abs(b)


_NUMS = frozenset({int, float, bool, complex})


def allclose(a, b, rtol, atol, depth=0):
    """numpy.allclose on numbers and (nested) sequences of numbers, without numpy."""
    if depth > MAX_DEPTH:
        return False
    ta, tb = _type(a), _type(b)
    if ta in _NUMS and tb in _NUMS:
        return _isclose(a, b, rtol, atol)
    seqs = (list, tuple)
    if ta in seqs and tb in seqs:
        if _len(a) != _len(b):
            # numpy broadcasts a length-1 side
            if _len(a) == 1:
                return all(allclose(a[0], y, rtol, atol, depth + 1) for y in b)
            if _len(b) == 1:
                return all(allclose(x, b[0], rtol, atol, depth + 1) for x in a)
            return False
        return all(allclose(x, y, rtol, atol, depth + 1) for x, y in _zip(a, b))
    if ta in seqs and tb in _NUMS:
        return all(allclose(x, b, rtol, atol, depth + 1) for x in a)
    if tb in seqs and ta in _NUMS:
        return all(allclose(a, y, rtol, atol, depth + 1) for y in b)
    return False


def _poly(xs, x):
    return sum(coeff * _pow(x, i) for i, coeff in enumerate(xs))


def _surface_area(base_edge, height):
    slant = _sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _digit_distance(num1, num2):
    a, b = _str(num1), _str(num2)
    width = max(_len(a), _len(b))
    a, b = a.zfill(width), b.zfill(width)
    return sum(_abs(_int(x) - _int(y)) for x, y in _zip(a, b))


def ships_value(dataset, entry_point, atol):
    """Whether expected outputs of this task need their values (oracles, tolerances)."""
    if atol:
        return True
    if dataset == "humaneval":
        return entry_point == "find_zero"
    return (
        entry_point in _MBPP_NOT_NONE
        or entry_point in _MBPP_SET_EQ
        or (entry_point in _MBPP_SPECIAL)
    )


def _is_small(value):
    """Whether a value pickles to at most VALUE_LIMIT_BYTES (long ones are not pickled)."""
    t = _type(value)
    if (t is str or t is bytes) and _len(value) > VALUE_LIMIT_BYTES:
        return False
    if t in (list, tuple, set, frozenset, dict) and _len(value) > VALUE_LIMIT_BYTES // 2:
        return False
    return _len(_dumps(value, 4)) <= VALUE_LIMIT_BYTES


def expected_record(value, always_value):
    """The record that stands for one expected output: a value, or a digest of a large one.

    A digest stands only where evalplus compares with plain ``==`` (no atol, no float
    expected value, no special oracle); everywhere else the value itself is shipped.
    """
    try:
        norm = normalise(value)
    except Untrusted:
        return ("v", value)
    if always_value or is_floats(norm):
        return ("v", norm)
    if _is_small(norm):
        return ("v", norm)
    try:
        return ("h", digest(norm))
    except (Untrusted, RecursionError):
        return ("v", norm)


class Checker:
    """evalplus's comparison of one output against one expected record, made strict."""

    def __init__(self, dataset, entry_point, atol):
        self.dataset = dataset
        self.entry_point = entry_point
        self.atol = atol

    def check(self, inp, out, record):
        """Return None when ``out`` passes, else the reason it fails."""
        kind, exp = record
        ep = self.entry_point
        if self.dataset == "mbpp" and ep in _MBPP_NOT_NONE:
            # Only "is it None" is asked of the output (a re.Match, usually): no __eq__ runs.
            if _type(out) is bool:
                return None if out == exp else "output differs from the expected output"
            return None if exp == (out is not None) else "output differs (None-ness)"
        try:
            norm = normalise(out)
        except Untrusted as exc:
            return _str(exc)
        except RecursionError:
            return "output nested too deeply"
        if self.dataset == "humaneval" and ep == "find_zero":
            if _type(norm) not in (int, float):
                return "find_zero returned a non-number"
            ok = _abs(_poly(*inp, norm)) <= self.atol
            return None if ok else "poly(xs, x) is not within atol of 0"
        if kind == "h":
            return None if digest(norm) == exp else "output differs from the expected output"
        exact = _bool(exp == norm)
        if self.dataset == "mbpp":
            if ep == "are_equivalent":
                exact = True
            elif ep == "sum_div":
                exact = exact or _bool(norm == 0)
            elif ep == "surface_Area":
                exact = exact or (
                    _type(norm) in _NUMS and _abs(norm - _surface_area(*inp)) <= self.atol
                )
            elif ep == "digit_distance_nums":
                exact = exact or _bool(norm == _digit_distance(*inp))
            elif ep in _MBPP_SET_EQ:
                exact = _bool(_set(norm) == _set(exp))
        if self.atol == 0 and is_floats(exp):
            self.atol = 1e-6  # evalplus enforces it, for this input and the ones after it
        if not exact and self.atol != 0:
            if _type(out) is not _type(exp):
                return "output differs from the expected output (type)"
            if _type(exp) in (list, tuple) and _len(norm) != _len(exp):
                return "output differs from the expected output (length)"
            if allclose(norm, exp, 1e-07, self.atol):
                return None
            return "output differs from the expected output (beyond atol/rtol)"
        return None if exact else "output differs from the expected output"


class _Sink:
    """stdout/stderr for the solution: accepts and drops everything."""

    def write(self, s):
        return _len(s)

    def writelines(self, lines):
        pass

    def flush(self):
        pass

    def isatty(self):
        return False

    def readable(self):
        return False


class _NoInput:
    """stdin for the solution: reading it is an error, as in evalplus."""

    def read(self, *args):
        raise OSError("stdin is not available to the solution")

    readline = read
    readlines = read

    def readable(self):
        return False


def _alarm(signum, frame):
    raise _TimeLimit()


def _read_job():
    with open(JOB_FILE, encoding="utf-8") as f:
        job = json.load(f)
    with open(SOLUTION_FILE, encoding="utf-8") as f:
        solution = f.read()
    with open(INPUTS_FILE, "rb") as f:
        inputs = _loads(zlib.decompress(base64.b64decode(f.read())))
    expected = None
    if job["mode"] == "check":
        expected = []
        with open(EXPECTED_FILE, "rb") as f:
            # One blob per reference chunk, one chunk per line.
            for line in f.read().split(b"\n"):
                if line.strip():
                    expected.extend(_loads(zlib.decompress(base64.b64decode(line))))
        # A job may cover a slice of the part's inputs: its expected records start here.
        offset = job.get("expected_offset", 0)
        expected = expected[offset : offset + _len(inputs)]
    # The solution must not find the expected outputs on disk.
    for name in (JOB_FILE, SOLUTION_FILE, INPUTS_FILE, EXPECTED_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
    return job, solution, inputs, expected


def _load_solution(solution, entry_point):
    ns = {"__name__": "__codekiln_solution__"}
    exec(compile(solution, "solution.py", "exec"), ns)
    fn = ns.get(entry_point)
    if not callable(fn):
        raise NameError(f"the solution defines no callable {entry_point!r}")
    return fn


def _codekiln_job():
    job, solution, inputs, expected = _read_job()
    saved = (_sys.stdin, _sys.stdout, _sys.stderr)
    _sys.stdin, _sys.stdout, _sys.stderr = _NoInput(), _Sink(), _Sink()
    _signal_fn(_SIGNAL, _alarm)
    try:
        if job["mode"] == "reference":
            report = REF_BEGIN + _reference(job, solution, inputs) + REF_END
        else:
            status, detail, progress = run_check(job, solution, inputs, expected)
            report = PROGRESS_BEGIN + json.dumps(progress) + PROGRESS_END
    finally:
        _setitimer(_ITIMER, 0)
        _sys.stdin, _sys.stdout, _sys.stderr = saved
    _sys.stdout.write("\n" + report + "\n")
    _sys.stdout.flush()
    if job["mode"] != "reference" and status != "pass":
        raise AssertionError((FAIL_PREFIX if status == "fail" else TIMEOUT_PREFIX) + detail)


def _reference(job, solution, inputs):
    fn = _load_solution(solution, job["entry_point"])
    dataset, ep, atol = job["dataset"], job["entry_point"], job["atol"]
    not_none = dataset == "mbpp" and ep in _MBPP_NOT_NONE
    always_value = ships_value(dataset, ep, atol)
    times, records, errors = [], [], 0
    # evalplus keeps atol = 1e-6 for the rest of a part once one expected value is_floats.
    for inp in inputs:
        args = _deepcopy(inp)
        start = _cpu()
        try:
            out = fn(*args)
        except _BaseException as exc:
            times.append(_cpu() - start)
            records.append(("e", f"{_type(exc).__name__}: {exc}"[:500]))
            errors += 1
            continue
        times.append(_cpu() - start)
        if not_none:
            out = out is not None
        record = expected_record(out, always_value)
        records.append(record)
        if record[0] == "v" and is_floats(record[1]):
            always_value = True
    blob = base64.b64encode(zlib.compress(_dumps(records, 4), 6)).decode("ascii")
    return json.dumps({"times_s": times, "errors": errors, "expected": blob})


def run_check(job, solution, inputs, expected):
    """Judge the solution on ``inputs``; return (status, "I: reason", progress).

    Time, all of it CPU time of this process, follows evalplus's ``untrusted_check``: each call
    has its own limit (``time_limits_s``; past it the input fails: "fail"), and loading the
    solution, every call and every comparison share the part's budget (``budget_s``, what is
    left of ``min(60, sum of the limits) + 2`` s; past it the part is a "timeout"). A job stops
    early, between inputs, before its own CPU share (``job_cpu_s``) could be overrun, and reports
    where the next job starts (``next``): this only splits the work, it never decides a verdict.
    """
    limits = job["time_limits_s"]
    budget = job["budget_s"]
    share = job["job_cpu_s"]
    _signal_fn(_SIGNAL, _alarm)
    start = _cpu()
    progress = {"next": None, "cpu_s": 0.0, "load_cpu_s": 0.0}

    def used():
        return _cpu() - start

    def done(status, detail, next_input=None):
        progress["next"] = next_input
        progress["cpu_s"] = used()
        return status, detail, progress

    try:
        _setitimer(_ITIMER, budget)
        try:
            fn = _load_solution(solution, job["entry_point"])
        finally:
            _setitimer(_ITIMER, 0)
    except _TimeLimit:
        return done("timeout", f"-1: loading the solution ran past the budget of {budget:.3g} s")
    except _BaseException as exc:
        return done("fail", f"-1: the solution did not load: {_type(exc).__name__}: {exc}"[:1000])
    progress["load_cpu_s"] = used()
    checker = Checker(job["dataset"], job["entry_point"], job["atol"])
    for i in range(_len(inputs)):
        if expected[i][0] == "e":
            continue  # the reference could not answer this input here: it judges nothing
        spent = used()
        if i > 0 and spent + limits[i] > share and spent < budget:
            return done("pass", "", i)  # the next job goes on from input i
        left = budget - spent
        if left <= 0:
            return done("timeout", f"{i}: the part ran past its budget of {budget:.3g} s")
        inp = inputs[i]
        per_input = limits[i] < left
        try:
            _setitimer(_ITIMER, limits[i] if per_input else left)
            try:
                out = fn(*inp)
            finally:
                _setitimer(_ITIMER, 0)
        except _TimeLimit:
            if per_input:
                return done("fail", f"{i}: ran past its limit of {limits[i]:.3g} s of CPU time")
            return done("timeout", f"{i}: the part ran past its budget of {budget:.3g} s")
        except _BaseException as exc:
            return done("fail", f"{i}: raised {_type(exc).__name__}: {exc}"[:1000])
        try:
            left = budget - used()
            if left <= 0:
                return done("timeout", f"{i}: the part ran past its budget of {budget:.3g} s")
            _setitimer(_ITIMER, left)
            try:
                reason = checker.check(inp, out, expected[i])
            finally:
                _setitimer(_ITIMER, 0)
        except _TimeLimit:
            return done("timeout", f"{i}: the part ran past its budget of {budget:.3g} s")
        except _BaseException as exc:
            reason = f"comparison raised {_type(exc).__name__}: {exc}"[:1000]
        if reason is not None:
            return done("fail", f"{i}: {reason}")
    return done("pass", "")
