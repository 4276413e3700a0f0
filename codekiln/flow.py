"""codekiln's flow, from a corpus to a training launch, composed in one place.

::

    inputs ──codekiln.stream──▶ corpus committed ──codekiln.synth──▶ synth/   (LLM synthesis)
                                                └─codekiln.train──▶ launch   (train, then eval)

The stream engine runs the pipeline and reports :class:`~codekiln.stream.runtime.job.
CorpusCommitted`; it knows nothing of what comes next. This module composes the steps that run
after the commit (:class:`SynthStep`, :class:`LaunchStep`: the engine's ``AfterCommit``
protocol), owns the combined config file (the engine's sections plus ``synth:`` and
``launch:``) and validates the whole of it, every endpoint it names included, before any work
starts (:func:`load_flow`): each problem is one line of the :class:`ConfigError` it raises.
A step's own errors are translated at this boundary: a config error it meets is the engine's
``ConfigError`` (exit 2), any other error of codekiln.synth or codekiln.train is
:class:`StepFailed` (a ``StreamError``, exit 1); the corpus stays committed either way.

``codekiln-stream run`` and ``codekiln-stream worker`` build their runs here.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codekiln.stream.config import StreamConfig, config_from_dict, read_config_file
from codekiln.stream.report import ReportPart
from codekiln.stream.runtime.errors import ConfigError, StreamError
from codekiln.stream.runtime.job import AfterCommit, CorpusCommitted, JobSpec

__all__ = [
    "LAUNCHER_MODULE",
    "SYNTH_MODULE",
    "FlowConfig",
    "FlowEnv",
    "LaunchStep",
    "StepFailed",
    "SynthStep",
    "check_endpoints",
    "flow_from_dict",
    "load_flow",
]

SYNTH_MODULE = "codekiln.synth.job"
SYNTH_FUNC = "run_synthesis"
LAUNCHER_MODULE = "codekiln.train.launcher"
LAUNCHER_FUNC = "on_corpus_committed"
LAUNCH_CHECK_FUNC = "validate_launch_config"
#: Top-level keys of the combined config that belong to this layer, not to the engine.
FLOW_KEYS = ("synth", "launch")
#: The synth: keys the manifest always records (the connection settings), in this order.
_SYNTH_URL_KEYS = ("llm_url", "sandbox_url")
#: Each endpoint check gives up after this long: a config check must end in seconds.
ENDPOINT_TIMEOUT_S = 5.0


class StepFailed(StreamError):
    """A step after the commit (synthesis, launch) failed; the corpus stays committed and the
    same command retries the step. One line, exit 1 (a config error there is ConfigError)."""


@dataclass(frozen=True)
class FlowEnv:
    """The environment settings the flow uses, read once by the entry point."""

    llm_url: str | None = None
    sandbox_url: str | None = None
    sandbox_token: str | None = None
    data_dir: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FlowEnv:
        """The settings every CLI reads alike (codekiln.cli_common): the sandbox token from
        CODEKILN_SANDBOX_TOKEN_FILE or CODEKILN_SANDBOX_TOKEN, the data folder from
        CODEKILN_DATA_DIR, else ../shared/data."""
        from codekiln.cli_common import SecretError, default_data_dir, sandbox_token

        try:
            token = sandbox_token(None, environ)
        except SecretError as exc:
            raise ConfigError(f"config: synth.sandbox_url: {exc}") from exc
        return cls(
            llm_url=environ.get("CODEKILN_LLM_URL") or None,
            sandbox_url=environ.get("CODEKILN_SANDBOX_URL") or None,
            sandbox_token=token,
            data_dir=str(default_data_dir(environ)),
        )


@dataclass(frozen=True)
class FlowConfig:
    """The combined config: the engine's part and the after-commit sections, all validated."""

    stream: StreamConfig = field(default_factory=StreamConfig)
    #: The ``synth:`` section as given (validated against codekiln.synth's SynthConfig).
    synth: Mapping[str, Any] = field(default_factory=dict)
    #: The ``launch:`` section, handed to codekiln.train.launcher once the corpus commits.
    launch: Mapping[str, Any] | None = None
    env: FlowEnv = field(default_factory=FlowEnv)

    @property
    def llm_url(self) -> str | None:
        """The effective LLM endpoint(s): synth.llm_url, else CODEKILN_LLM_URL."""
        return self.synth.get("llm_url") or self.env.llm_url

    @property
    def sandbox_url(self) -> str | None:
        return self.synth.get("sandbox_url") or self.env.sandbox_url

    @property
    def data_dir(self) -> str | None:
        return self.synth.get("data_dir") or self.env.data_dir

    def steps(self) -> tuple[AfterCommit, ...]:
        """What runs once the corpus is committed, in order."""
        return (SynthStep(self), LaunchStep(self.launch))

    def config_extra(self) -> dict[str, Any]:
        """The after-commit sections as the manifest records them under ``config``."""
        synth = {key: self.synth.get(key) for key in _SYNTH_URL_KEYS}
        synth.update({k: v for k, v in self.synth.items() if k not in _SYNTH_URL_KEYS})
        return {"synth": synth, "launch": None if self.launch is None else dict(self.launch)}

    def job_spec(
        self,
        inputs: Sequence[str],
        out_dir: Path,
        *,
        config: StreamConfig | None = None,
        overwrite: bool = False,
        restart_on_change: bool = False,
        notes: Sequence[str] = (),
    ) -> JobSpec:
        """The engine's run of this flow (``config``: the engine's part, e.g. with CLI caps)."""
        return JobSpec(
            inputs=tuple(inputs),
            out_dir=out_dir,
            config=config or self.stream,
            overwrite=overwrite,
            restart_on_change=restart_on_change,
            notes=tuple(notes),
            after_commit=self.steps(),
            config_extra=self.config_extra(),
        )


# -- the after-commit steps -------------------------------------------------------------------


def _optional_callable(module_name: str, func: str) -> Callable[..., Any] | None:
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return None
    fn = getattr(importlib.import_module(module_name), func, None)
    return fn if callable(fn) else None


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Await a coroutine function; run a plain function in a thread (it may take minutes)."""
    if inspect.iscoroutinefunction(fn):
        result = await fn(*args, **kwargs)
    else:
        result = await asyncio.to_thread(fn, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    return dict(result or {})


def _prefixed(section: str, text: str) -> str:
    """Each line of a step's config error under one ``config: <section>`` prefix."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or ["failed"]
    out = []
    for line in lines:
        if line.startswith("config: "):
            out.append(line)
        elif line.startswith((f"{section}:", f"{section}.")):
            out.append(f"config: {line}")
        else:
            out.append(f"config: {section}: {line}")
    return "\n".join(out)


def _json_section(title: str, value: Any) -> tuple[str, ...]:
    return (
        f"## {title}",
        "",
        "```json",
        json.dumps(value, indent=2, default=str, sort_keys=True),
        "```",
    )


class SynthStep:
    """LLM synthesis (codekiln.synth) over the committed corpus, when an LLM endpoint is set."""

    key = "synth"

    def __init__(self, flow: FlowConfig) -> None:
        self.flow = flow
        self._fn: Callable[..., Any] | None = None
        self._looked_up = False

    def _function(self) -> Callable[..., Any] | None:
        # Looked up only for a run with an LLM endpoint: importing codekiln.synth (aiohttp,
        # the LLM client) costs about 0.1 CPU s, and a run without an endpoint never calls it.
        if not self._looked_up and self.flow.llm_url:
            self._fn = _optional_callable(SYNTH_MODULE, SYNTH_FUNC)
            self._looked_up = True
        return self._fn

    def wanted(self) -> bool:
        return self._function() is not None

    async def run(self, committed: CorpusCommitted) -> dict[str, Any]:
        fn = self._function()
        assert fn is not None  # the engine calls run only when wanted() said so
        kwargs: dict[str, Any] = {
            "corpus_dir": committed.corpus_dir,
            "out_dir": committed.out_dir / "synth",
            "llm_url": self.flow.llm_url,
            "sandbox_url": self.flow.sandbox_url,
        }
        options = {k: v for k, v in self.flow.synth.items() if k not in _SYNTH_URL_KEYS}
        if options:
            from codekiln.synth.config import SynthConfig

            kwargs["config"] = SynthConfig.from_mapping(options)
        if self.flow.data_dir:
            kwargs["data_dir"] = self.flow.data_dir
        if self.flow.env.sandbox_token:  # from CODEKILN_SANDBOX_TOKEN_FILE too, as checked
            kwargs["sandbox_token"] = self.flow.env.sandbox_token
        from codekiln.synth.errors import ConfigError as SynthConfigError
        from codekiln.synth.errors import PromptError, SynthError

        try:
            return await _call(fn, **kwargs)
        except (SynthConfigError, PromptError) as exc:
            # A user error found only once synthesis starts (e.g. the server's context is
            # shorter than a prompt's max_tokens): the engine's ConfigError, exit 2, one line.
            raise ConfigError(_prefixed("synth", str(exc))) from exc
        except SynthError as exc:  # the LLM or the sandbox failed: a failure, not a bug
            raise StepFailed(f"synth: {type(exc).__name__}: {exc}") from exc

    def entry(self, result: dict[str, Any] | None) -> dict[str, Any]:
        if not self.flow.llm_url:
            return {
                "enabled": False,
                "why": "no LLM endpoint configured",
                "how": "set CODEKILN_LLM_URL=http://host:port/v1 (an OpenAI-compatible server) "
                "or the config key synth.llm_url; synth.sandbox_url (or CODEKILN_SANDBOX_URL) "
                "names the sandbox service that checks generated tests",
            }
        available = self._function() is not None
        status: dict[str, Any] = {
            "enabled": True,
            "llm_url": self.flow.llm_url,
            "available": available,
        }
        if not available:
            status["why"] = f"{SYNTH_MODULE}:{SYNTH_FUNC} is not installed yet"
        elif result is not None:
            status["result"] = result
        return status

    def report(self, manifest: Mapping[str, Any]) -> ReportPart:
        synth = manifest.get(self.key, {})
        if not synth.get("enabled"):
            return ReportPart(
                off=(
                    f"- **LLM synthesis** (annealing / SFT data generation): off, "
                    f"{synth.get('why', 'no LLM endpoint')}. To turn it on: "
                    f"{synth.get('how', '')}.",
                ),
                summary=(
                    "off: LLM synthesis (set CODEKILN_LLM_URL or synth.llm_url to turn it on)",
                ),
            )
        if not synth.get("available"):
            return ReportPart(
                off=(
                    f"- **LLM synthesis**: endpoint {synth.get('llm_url')} given, but "
                    f"{synth.get('why')}.",
                )
            )
        if "result" in synth:
            return ReportPart(section=_json_section("LLM synthesis", synth["result"]))
        return ReportPart()


class LaunchStep:
    """Training (then evaluation) jobs on the committed corpus (codekiln.train.launcher)."""

    key = "launch"

    def __init__(self, launch: Mapping[str, Any] | None) -> None:
        self.launch = launch

    def wanted(self) -> bool:
        return self.launch is not None

    async def run(self, committed: CorpusCommitted) -> dict[str, Any]:
        assert self.launch is not None
        fn = await asyncio.to_thread(_optional_callable, LAUNCHER_MODULE, LAUNCHER_FUNC)
        if fn is None:  # checked by load_flow; the module vanished since
            raise ConfigError(f"config: launch: {LAUNCHER_MODULE}:{LAUNCHER_FUNC} is not available")
        from codekiln.train import ConfigError as TrainConfigError
        from codekiln.train import TrainError

        try:
            return await _call(fn, committed.manifest_path, dict(self.launch))
        except TrainConfigError as exc:
            raise ConfigError(_prefixed("launch", str(exc))) from exc
        except TrainError as exc:  # the cluster refused or a job failed: a failure, not a bug
            raise StepFailed(f"launch: {type(exc).__name__}: {exc}") from exc

    def entry(self, result: dict[str, Any] | None) -> dict[str, Any] | None:
        return result if self.launch is not None else None

    def report(self, manifest: Mapping[str, Any]) -> ReportPart:
        if self.key not in manifest:
            return ReportPart(
                off=(
                    "- **Training / evaluation launch**: off; add a `launch:` mapping to the "
                    "config (handed to codekiln.train.launcher once the corpus commits).",
                )
            )
        return ReportPart(section=_json_section("Launched jobs", manifest[self.key]))


# -- validation --------------------------------------------------------------------------------


def _synth_problems(raw: Any, env: FlowEnv) -> tuple[dict[str, Any], list[str]]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return {}, [f"config: synth: expected a mapping, got {type(raw).__name__} {raw!r}"]
    section = dict(raw)
    problems: list[str] = []
    for key in _SYNTH_URL_KEYS:
        value = section.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(f"config: synth.{key}: expected a non-empty string, got {value!r}")
    url_problems = bool(problems)
    llm_url = section.get("llm_url") or env.llm_url
    options = {k: v for k, v in section.items() if k not in _SYNTH_URL_KEYS}
    if llm_url or options:
        # The synthesis job's own check of its options (codekiln.synth.config.SynthConfig),
        # made whatever the URL keys hold: a bad URL does not hide a bad option.
        from codekiln.synth.config import SynthConfig
        from codekiln.synth.errors import SynthError

        try:
            SynthConfig.from_mapping(section if not url_problems else options)
        except SynthError as exc:
            text = str(exc)
            problems.append(text if text.startswith("config: ") else f"config: {text}")
    data_dir = section.get("data_dir") or env.data_dir
    # A data_dir that is no string is SynthConfig's problem, reported above.
    if llm_url and (data_dir is None or isinstance(data_dir, str)):
        if not data_dir:
            problems.append(
                "config: synth.data_dir: synthesis needs the benchmark files for "
                "decontamination; set synth.data_dir or CODEKILN_DATA_DIR"
            )
        elif not Path(data_dir).is_dir():
            problems.append(f"config: synth.data_dir: {data_dir} is not a directory")
    return section, problems


def _launch_problems(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [f"config: launch: expected a mapping, got {type(raw).__name__} {raw!r}"]
    check = None
    try:
        found = importlib.util.find_spec(LAUNCHER_MODULE) is not None
    except ModuleNotFoundError:
        found = False
    if found:
        module = importlib.import_module(LAUNCHER_MODULE)
        if not callable(getattr(module, LAUNCHER_FUNC, None)):
            found = False
        check = getattr(module, LAUNCH_CHECK_FUNC, None)
    if not found:
        return [
            f"config: launch: launching jobs needs {LAUNCHER_MODULE}:{LAUNCHER_FUNC}, but it "
            "is not installed; remove the 'launch' key or install codekiln[train]"
        ]
    if not callable(check):
        return [f"config: launch: {LAUNCHER_MODULE} has no {LAUNCH_CHECK_FUNC} to check it with"]
    try:
        check(dict(raw))
    except Exception as exc:  # the launcher's ConfigError, or a schema error under it
        text = str(exc).strip() or type(exc).__name__
        # The launcher often names the key path itself (launch.image): one prefix, not two.
        return _prefixed("launch", text).splitlines()
    return []


def _validate(raw: Any, env: FlowEnv) -> tuple[FlowConfig, list[str], FlowConfig | None]:
    """(the flow as far as it is valid, every static problem, what check_endpoints may probe).

    Every section is checked whatever another one holds. The third item is ``None`` when the
    LLM URL itself is malformed (nothing to probe); a malformed sandbox URL is left out of it.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        # The engine's message for it (the same as a stream-only config's).
        config_from_dict(raw)
    problems: list[str] = []
    stream = StreamConfig()
    try:
        stream = config_from_dict(
            {k: v for k, v in raw.items() if k not in FLOW_KEYS}, known_above=FLOW_KEYS
        )
    except ConfigError as exc:
        problems.append(str(exc))
    synth, synth_problems = _synth_problems(raw.get("synth"), env)
    problems += synth_problems
    launch_problems = _launch_problems(raw.get("launch"))
    problems += launch_problems
    launch = raw.get("launch")
    flow = FlowConfig(
        stream=stream,
        synth=synth,
        launch=dict(launch) if isinstance(launch, Mapping) and not launch_problems else None,
        env=env,
    )

    def well_formed(key: str) -> bool:
        value = synth.get(key)
        return value is None or (isinstance(value, str) and bool(value))

    probe: FlowConfig | None = flow
    if not well_formed("llm_url"):
        probe = None
    elif not well_formed("sandbox_url"):
        probe = replace(
            flow,
            synth={k: v for k, v in synth.items() if k != "sandbox_url"},
            env=replace(env, sandbox_url=None),
        )
    return flow, problems, probe


def flow_from_dict(raw: Any, env: FlowEnv | None = None) -> FlowConfig:
    """Validate every section of a combined config mapping (no network: see
    :func:`check_endpoints`); every problem found is one line of the ConfigError raised."""
    flow, problems, _ = _validate(raw, env or FlowEnv())
    if problems:
        raise ConfigError("\n".join(problems))
    return flow


def _probe(
    url: str, *, method: str = "GET", token: str | None = None, data: bytes | None = None
) -> tuple[int | None, str]:
    """(HTTP status, "") or (None, why it could not be reached); never raises."""
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=ENDPOINT_TIMEOUT_S) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except urllib.error.URLError as exc:
        return None, str(exc.reason)
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed URL
        return None, str(exc) or type(exc).__name__


def _http_url(key: str, url: str) -> str | None:
    if not url.startswith(("http://", "https://")):
        return f"config: {key}: {url!r} is not an http:// or https:// URL"
    return None


def check_endpoints(flow: FlowConfig) -> list[str]:
    """One line per endpoint the flow names that cannot be reached or refuses its token.

    The LLM endpoint(s) must list models (``GET /v1/models``, as the synthesis client asks);
    the sandbox must answer ``/healthz`` and accept the token (CODEKILN_SANDBOX_TOKEN) on its
    run route: an empty request there is refused for the token before its body is read.
    """
    if not flow.llm_url:
        return []
    problems: list[str] = []
    for url in (u.strip() for u in flow.llm_url.split(",") if u.strip()):
        bad = _http_url("synth.llm_url", url)
        if bad:
            problems.append(bad)
            continue
        # The synthesis client's base URL: a trailing /v1 is accepted and stripped.
        base = url.rstrip("/").removesuffix("/v1")
        status, why = _probe(base + "/v1/models")
        if status is None:
            problems.append(f"config: synth.llm_url: cannot reach {url}: {why}")
        elif status in (401, 403):
            problems.append(f"config: synth.llm_url: {url} refused the request (HTTP {status})")
        elif not 200 <= status < 300:
            problems.append(
                f"config: synth.llm_url: {base}/v1/models answered HTTP {status} "
                "(not an OpenAI-compatible server?)"
            )
    sandbox = flow.sandbox_url
    if sandbox:
        base = sandbox.rstrip("/")
        bad = _http_url("synth.sandbox_url", sandbox)
        status, why = (None, "") if bad else _probe(base + "/healthz")
        if bad:
            problems.append(bad)
        elif status is None:
            problems.append(f"config: synth.sandbox_url: cannot reach {sandbox}: {why}")
        elif not 200 <= status < 300:
            problems.append(f"config: synth.sandbox_url: {base}/healthz answered HTTP {status}")
        else:
            status, why = _probe(
                base + "/v1/run", method="POST", token=flow.env.sandbox_token, data=b"{}"
            )
            if status in (401, 403):
                problems.append(
                    f"config: synth.sandbox_url: {sandbox} refused the token (HTTP {status}); "
                    "set CODEKILN_SANDBOX_TOKEN_FILE (or CODEKILN_SANDBOX_TOKEN) to its token"
                )
            elif status is None:
                problems.append(f"config: synth.sandbox_url: cannot reach {sandbox}: {why}")
    return problems


def load_flow(path: str | Path | None, env: FlowEnv | None = None) -> FlowConfig:
    """Read and validate the whole config, then check every endpoint it names.

    Runs before any work starts; raises one :class:`ConfigError` with one line per problem.
    """
    raw = {} if path is None else read_config_file(path)
    # One pass: the endpoints are probed even when a section has problems (an unreachable
    # LLM is reported beside a bad launch: section), unless their own URL is malformed.
    flow, problems, probe = _validate(raw, env or FlowEnv())
    if probe is not None:
        problems += check_endpoints(probe)
    if problems:
        raise ConfigError("\n".join(problems))
    return flow
