"""The async LLM client against a real fake OpenAI server on port 0."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from aiohttp import web
from codekiln.synth.errors import ConfigError
from codekiln.synth.llm import (
    LLMBadRequest,
    LLMClient,
    LLMConfig,
    LLMConnectionError,
    LLMDeadlineExceeded,
    LLMProtocolError,
    LLMRateLimited,
    LLMRetriesExhausted,
    LLMServerError,
    LLMTimeout,
    SamplingParams,
)
from codekiln.synth.portal import LoopThread
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.fixtures.http import serving
from tests.synth.helpers import fast_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestCalls:
    async def test_complete_discovers_model_and_returns_text(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """Without a configured model the client uses the first id /v1/models lists."""
        fake_llm.script("def add(a, b):\n    return a + b")
        out = await llm.complete("# add two numbers\n")
        assert llm.model == "fake-coder"
        assert out.texts() == ["def add(a, b):\n    return a + b"]
        assert out.usage.completion_tokens > 0
        assert out.endpoint == fake_llm.url

    async def test_prompt_list_and_n_group_by_prompt(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """A prompt list with n samples comes back grouped by prompt index in one request."""
        fake_llm.default = lambda prompt, i: f"{prompt}:{i}"
        out = await llm.complete(["a", "b", "c"], SamplingParams(n=2, temperature=0.7))
        assert out.texts(0) == ["a:0", "a:1"]
        assert out.texts(2) == ["c:0", "c:1"]
        assert len([r for r in fake_llm.requests if r.method == "POST"]) == 1

    async def test_sampling_params_are_sent(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """n, temperature, top_p, max_tokens, stop, seed and extras reach the server."""
        params = SamplingParams(
            n=3, temperature=0.5, top_p=0.9, max_tokens=7, stop=("\n\n",), seed=11,
            extra={"repetition_penalty": 1.1},
        )  # fmt: skip
        await llm.complete("x", params)
        body = fake_llm.requests[-1].body
        assert body == {
            "model": "fake-coder", "prompt": "x", "n": 3, "temperature": 0.5, "top_p": 0.9,
            "max_tokens": 7, "stop": ["\n\n"], "seed": 11, "repetition_penalty": 1.1,
        }  # fmt: skip

    async def test_stop_and_max_tokens_set_finish_reason(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """finish_reason is passed through from the server."""
        fake_llm.script("one two three four five")
        out = await llm.complete("x", SamplingParams(max_tokens=2))
        assert out.choices[0].finish_reason == "length"
        assert out.choices[0].text == "one two"

    async def test_completion_logprobs_are_parsed(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """Completion top_logprobs come back per token as a mapping."""
        fake_llm.script(Reply("YES", top_logprobs=[{"YES": -0.2, "NO": -1.8, " yes": -3.0}]))
        out = await llm.complete("q", SamplingParams(max_tokens=1, logprobs=True, top_logprobs=5))
        logprobs = out.choices[0].logprobs
        assert logprobs is not None
        (token,) = logprobs
        assert token.token == "YES"
        assert token.logprob == -0.2
        assert token.top["NO"] == -1.8

    async def test_chat_with_logprobs(self, fake_llm: FakeOpenAIServer, llm: LLMClient) -> None:
        """Chat replies carry message content and top_logprobs alternatives."""
        fake_llm.route("Is this code", Reply("NO", top_logprobs=[{"NO": -0.1, "YES": -2.5}]))
        out = await llm.chat(
            [{"role": "system", "content": "Answer YES or NO."},
             {"role": "user", "content": "Is this code? hello"}],
            SamplingParams(max_tokens=1, logprobs=True, top_logprobs=2),
        )  # fmt: skip
        assert out.choices[0].text == "NO"
        logprobs = out.choices[0].logprobs
        assert logprobs is not None
        assert dict(logprobs[0].top) == {"NO": -0.1, "YES": -2.5}
        assert fake_llm.requests[-1].body["top_logprobs"] == 2

    async def test_api_key_is_sent(self) -> None:
        """A configured api_key goes out as a Bearer token."""
        async with FakeOpenAIServer(api_key="s3cret") as server:
            async with LLMClient(fast_config(server.url, api_key="s3cret")) as client:
                out = await client.complete("x")
            server.assert_clean()
        assert out.texts() == ["ok"]

    async def test_base_url_with_v1_suffix(self, fake_llm: FakeOpenAIServer) -> None:
        """An endpoint given as http://host:port/v1/ is accepted."""
        async with LLMClient(fast_config(fake_llm.url + "/v1/")) as client:
            assert (await client.complete("x")).texts() == ["ok"]


class TestChoiceIndices:
    """Choice i of a reply is prompt i // n, sample i % n: exactly 0 .. prompts * n - 1 must come
    back, each once. A real aiohttp server on port 0 answers the indices each case gives."""

    @staticmethod
    def _app(indices: list[int], chat: bool) -> web.Application:
        def choice(i: int) -> dict[str, object]:
            text = (
                {"message": {"role": "assistant", "content": f"c{i}"}}
                if chat
                else {"text": f"c{i}"}
            )
            return {"index": i, "finish_reason": "stop", **text}

        async def models(_: web.Request) -> web.Response:
            return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

        async def reply(_: web.Request) -> web.Response:
            usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            return web.json_response(
                {"model": "m", "choices": [choice(i) for i in indices], "usage": usage}
            )

        app = web.Application()
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/completions", reply)
        app.router.add_post("/v1/chat/completions", reply)
        return app

    async def _ask(self, indices: list[int], *, chat: bool = False) -> list[list[str]]:
        async with serving(self._app(indices, chat)) as url, LLMClient(fast_config(url)) as client:
            params = SamplingParams(n=2, temperature=0.7)
            if chat:
                out = await client.chat([{"role": "user", "content": "x"}], params)
                return [out.texts(0)]
            out = await client.complete(["a", "b"], params)
            return [out.texts(0), out.texts(1)]

    async def test_out_of_order_indices_are_grouped_by_index(self) -> None:
        assert await self._ask([3, 1, 0, 2]) == [["c0", "c1"], ["c2", "c3"]]
        assert await self._ask([1, 0], chat=True) == [["c0", "c1"]]

    @pytest.mark.parametrize(
        "indices",
        [[0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 3, 4], [0, 1, 2, 4], [1, 2, 3, 4], []],
        ids=["missing", "repeated", "extra", "gap", "from-one", "none"],
    )
    async def test_a_reply_without_each_index_once_is_refused(self, indices: list[int]) -> None:
        """Regrouping such a reply would give a prompt another prompt's sample (or too few)."""
        with pytest.raises(LLMProtocolError, match=r"2 prompt\(s\) x n=2 ask for exactly 0..3"):
            await self._ask(indices)

    async def test_a_chat_reply_with_too_many_choices_is_refused(self) -> None:
        with pytest.raises(LLMProtocolError, match=r"1 prompt\(s\) x n=2 ask for exactly 0..1"):
            await self._ask([0, 1, 2], chat=True)


class TestRetries:
    async def test_500_is_retried(self, fake_llm: FakeOpenAIServer, llm: LLMClient) -> None:
        """Two 500s, then a reply: the call succeeds on the third attempt."""
        fake_llm.fail_next(2, status=500)
        out = await llm.complete("x")
        assert out.attempts == 3
        assert llm.stats()[fake_llm.url].failures == {"LLMServerError": 2}

    async def test_429_is_retried(self, fake_llm: FakeOpenAIServer, llm: LLMClient) -> None:
        """A 429 with Retry-After is retried after the hinted wait."""
        fake_llm.fail_next(1, status=429, retry_after_s=0.05)
        out = await llm.complete("x")
        assert out.attempts == 2
        assert llm.stats()[fake_llm.url].failures == {"LLMRateLimited": 1}

    async def test_retry_after_beyond_deadline_fails_fast(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """A Retry-After longer than the remaining deadline raises instead of sleeping."""
        fake_llm.fail_next(1, status=429, retry_after_s=30)
        with pytest.raises(LLMDeadlineExceeded) as info:
            await llm.complete("x", deadline_s=5)
        assert isinstance(info.value.__cause__, LLMRateLimited)

    async def test_400_is_fatal(self, fake_llm: FakeOpenAIServer, llm: LLMClient) -> None:
        """A 4xx (here: unknown model) is not retried."""
        async with LLMClient(fast_config(fake_llm.url, model="nope")) as client:
            with pytest.raises(LLMBadRequest) as info:
                await client.complete("x")
        assert info.value.status == 404
        assert len(fake_llm.requests) == 1
        fake_llm.errors.clear()  # the server rightly rejected the unknown model

    @pytest.mark.parametrize(
        ("mode", "settings", "last", "attempts"),
        [
            # An endpoint that always fails: the last error is the server's 5xx.
            ("fail", {"max_retries": 2, "breaker_failures": 100}, LLMServerError, 3),
            # A reply slower than read_timeout_s is an LLMTimeout, retried like a 5xx.
            ("slow", {"read_timeout_s": 0.1, "max_retries": 0}, LLMTimeout, 1),
        ],
        ids=["server_error", "read_timeout"],
    )
    async def test_retries_exhausted(
        self,
        fake_llm: FakeOpenAIServer,
        mode: str,
        settings: dict[str, float],
        last: type[Exception],
        attempts: int,
    ) -> None:
        """Retryable failures end in LLMRetriesExhausted with the last error and the count."""
        config = fast_config(fake_llm.mode_url(mode), model="fake-coder", **settings)
        async with LLMClient(config) as client:
            with pytest.raises(LLMRetriesExhausted) as info:
                await client.complete("x")
        assert isinstance(info.value.last, last)
        assert info.value.attempts == attempts

    async def test_connection_refused_is_retryable(self) -> None:
        """Nothing listening: connection errors are retried, then reported."""
        url = f"http://127.0.0.1:{_free_port()}"
        async with LLMClient(fast_config(url, model="m", max_retries=1)) as client:
            with pytest.raises(LLMRetriesExhausted) as info:
                await client.complete("x")
        assert isinstance(info.value.last, LLMConnectionError)

    async def test_deadline_bounds_a_slow_call(self, fake_llm: FakeOpenAIServer) -> None:
        """deadline_s ends a call that would take longer with LLMDeadlineExceeded."""
        async with LLMClient(fast_config(fake_llm.mode_url("slow"), model="fake-coder")) as client:
            with pytest.raises(LLMDeadlineExceeded):
                await client.complete("x", deadline_s=0.2)

    async def test_caller_timeout_cancels(self, fake_llm: FakeOpenAIServer) -> None:
        """asyncio.timeout around a call cancels it cleanly and frees the slot."""
        async with LLMClient(fast_config(fake_llm.mode_url("slow"), model="fake-coder")) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await client.complete("x")
            assert client._endpoints[0].outstanding == 0


class TestEndpoints:
    async def test_least_outstanding_spreads_load(self) -> None:
        """Concurrent requests split evenly over two equally fast endpoints."""
        async with FakeOpenAIServer(latency_s=0.05) as a, FakeOpenAIServer(latency_s=0.05) as b:
            async with LLMClient(fast_config(a.url, b.url, model="fake-model")) as client:
                await asyncio.gather(*(client.complete("x") for _ in range(40)))
            assert a.served == 20
            assert b.served == 20

    async def test_concurrency_cap_per_endpoint(self, fake_llm: FakeOpenAIServer) -> None:
        """No more than max_concurrency_per_endpoint requests are in flight at once."""
        fake_llm.latency_s = 0.02
        config = fast_config(fake_llm.url, model="fake-coder", max_concurrency_per_endpoint=3)
        async with LLMClient(config) as client:
            await asyncio.gather(*(client.complete("x") for _ in range(20)))
        assert fake_llm.max_inflight == 3

    async def test_failing_endpoint_circuit_opens(self, fake_llm: FakeOpenAIServer) -> None:
        """With one endpoint down, every call succeeds and the bad one's circuit opens."""
        bad = fake_llm.mode_url("fail")
        config = fast_config(fake_llm.url, bad, model="fake-coder", breaker_failures=3,
                             breaker_reset_s=60)  # fmt: skip
        async with LLMClient(config) as client:
            results = await asyncio.gather(*(client.complete("x") for _ in range(50)))
            stats = client.stats()
        assert all(r.endpoint == fake_llm.url for r in results)
        assert stats[bad].circuit_opens == 1
        assert stats[bad].requests <= 3 + config.max_concurrency_per_endpoint
        assert stats[fake_llm.url].successes == 50

    async def test_circuit_half_open_probe_recloses(self, fake_llm: FakeOpenAIServer) -> None:
        """After breaker_reset_s one probe goes through; its success closes the circuit."""
        config = fast_config(fake_llm.url, model="fake-coder", breaker_failures=2,
                             breaker_reset_s=0.05, max_retries=5)  # fmt: skip
        fake_llm.fail_next(2, status=503)
        async with LLMClient(config) as client:
            out = await client.complete("x")
            stats = client.stats()[fake_llm.url]
        assert out.texts() == ["ok"]
        assert stats.circuit_opens == 1
        assert client._endpoints[0].open_until == 0.0

    async def test_wait_ready_skips_down_endpoint(self, fake_llm: FakeOpenAIServer) -> None:
        """wait_ready returns the endpoints that list a model."""
        async with LLMClient(fast_config(fake_llm.url, fake_llm.mode_url("fail"))) as client:
            ready = await client.wait_ready(timeout_s=2)
        assert ready == [fake_llm.url]

    async def test_wait_ready_times_out(self, fake_llm: FakeOpenAIServer) -> None:
        """No endpoint ready within the timeout raises LLMDeadlineExceeded."""
        async with LLMClient(fast_config(fake_llm.mode_url("fail"))) as client:
            with pytest.raises(LLMDeadlineExceeded):
                await client.wait_ready(timeout_s=0.3, poll_s=0.1)

    async def test_wait_ready_says_it_is_waiting(self) -> None:
        """on_wait hears of the wait at once and again every report_every_s, each line naming the
        endpoint and the refused connection in a readable form (not aiohttp's ConnectionKey)."""
        url = f"http://127.0.0.1:{_free_port()}"
        lines: list[str] = []
        async with LLMClient(fast_config(url)) as client:
            with pytest.raises(LLMDeadlineExceeded) as info:
                await client.wait_ready(
                    timeout_s=1.0, poll_s=0.1, on_wait=lines.append, report_every_s=0.4
                )
        assert 2 <= len(lines) <= 4, lines
        assert lines[0].startswith(f"waiting for an LLM endpoint ({url}): 0 s of 1 s; last: ")
        for text in [*lines, str(info.value)]:
            assert "Connect call failed" in text
            assert "ConnectionKey" not in text

    async def test_wait_ready_is_quiet_when_ready(self, fake_llm: FakeOpenAIServer) -> None:
        lines: list[str] = []
        async with LLMClient(fast_config(fake_llm.url)) as client:
            await client.wait_ready(timeout_s=2, on_wait=lines.append)
        assert lines == []

    async def test_usage_and_metrics_are_accounted(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """Token usage lands in stats() and in the Prometheus counters."""
        labels = {"endpoint": fake_llm.url, "kind": "completion"}
        before = REGISTRY.get_sample_value("codekiln_llm_tokens_total", labels) or 0.0
        fake_llm.script("a b c")
        await llm.complete("x y")
        stats = llm.stats()[fake_llm.url]
        assert (stats.prompt_tokens, stats.completion_tokens) == (2, 3)
        assert REGISTRY.get_sample_value("codekiln_llm_tokens_total", labels) == before + 3


class TestConfig:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"endpoints": ()}, "non-empty"),
            ({"endpoints": ("ftp://x",)}, "http://"),
            ({"endpoints": ("http://a", "http://a/v1")}, "duplicates"),
            ({"endpoints": ("http://a",), "max_retries": -1}, "max_retries"),
            ({"endpoints": ("http://a",), "read_timeout_s": 0}, "read_timeout_s"),
        ],
    )
    def test_bad_config_is_rejected(self, kwargs: dict[str, object], message: str) -> None:
        """Invalid settings raise ConfigError naming the key."""
        with pytest.raises(ConfigError, match=message):
            LLMConfig(**kwargs)  # type: ignore[arg-type]


async def test_waiting_for_a_probe_spends_no_attempt(fake_llm: FakeOpenAIServer) -> None:
    """Calls that wait while a slow half-open probe runs do not run out of retries."""
    fake_llm.latency_s = 0.3
    fake_llm.fail_next(1, status=500)
    config = fast_config(fake_llm.url, model="fake-coder", breaker_failures=1,
                         breaker_reset_s=0.05, max_retries=2)  # fmt: skip
    async with LLMClient(config) as client:
        first = asyncio.create_task(client.complete("x"))
        await asyncio.sleep(0.1)  # the 500 came back: the circuit is open, then probing
        rest = await asyncio.gather(*(client.complete("y") for _ in range(10)))
        assert (await first).texts() == ["ok"]
    assert all(r.texts() == ["ok"] for r in rest)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LoopThread, LLMClient]]:
    """A fake server and a client on a private loop, shared by the property's examples."""
    portal = LoopThread()
    server = FakeOpenAIServer(model="m")
    server.default = lambda prompt, i: f"{prompt}|{i}"
    portal.call(server.start())
    client = LLMClient(fast_config(server.url, model="m"))
    portal.call(client.__aenter__())
    yield portal, client
    portal.call(client.aclose())
    portal.call(server.stop())
    portal.close()


class TestGroupingProperty:
    """For any prompt list and n, samples come back grouped under their prompt, in order."""

    @settings(max_examples=25, deadline=None)
    @given(
        prompts=st.lists(st.text(alphabet="abcxyz ", min_size=1, max_size=8), min_size=1,
                         max_size=5),
        n=st.integers(1, 4),
    )  # fmt: skip
    def test_grouping(
        self, served: tuple[LoopThread, LLMClient], prompts: list[str], n: int
    ) -> None:
        """texts(i) is the n samples of prompt i, sample j at position j."""
        portal, client = served
        out = portal.call(client.complete(prompts, SamplingParams(n=n, max_tokens=64)))
        for i, prompt in enumerate(prompts):
            assert out.texts(i) == [f"{prompt}|{j}" for j in range(n)]


class TestServerLimits:
    """vLLM's per-request limits, as the fake mirrors them (tests/synth/test_vllm.py: real)."""

    STOPS = ("\n#", "\nclass", "\nif", "\nprint", "\nimport", "!", "?")

    async def test_at_most_four_stop_strings_are_sent_and_all_are_applied(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """7 stop strings: the server gets the first 4, the text is cut at the 6th's match."""
        fake_llm.script("def f():\n    return 1!\nprint(f())")
        out = await llm.complete("x", SamplingParams(stop=self.STOPS))
        assert fake_llm.requests[-1].body["stop"] == list(self.STOPS[:4])
        assert out.texts() == ["def f():\n    return 1"]
        assert out.choices[0].finish_reason == "stop"
        fake_llm.assert_clean()

    async def test_the_stop_cap_follows_the_config(self, fake_llm: FakeOpenAIServer) -> None:
        """max_stop_strings=2 sends 2; the fake's refusal of 5 shows the cap is needed."""
        config = LLMConfig(endpoints=(fake_llm.url,), max_stop_strings=2, max_retries=0)
        async with LLMClient(config) as llm:
            await llm.chat([{"role": "user", "content": "hi"}], SamplingParams(stop=self.STOPS))
            assert fake_llm.requests[-1].body["stop"] == list(self.STOPS[:2])
        capped = LLMConfig(endpoints=(fake_llm.url,), max_stop_strings=5, max_retries=0)
        async with LLMClient(capped) as llm:
            with pytest.raises(LLMBadRequest, match="at most 4"):
                await llm.complete("x", SamplingParams(stop=self.STOPS))
        assert fake_llm.errors == ["stop: list should have at most 4 items, not 5"]
        fake_llm.errors.clear()  # the refusal was the point

    async def test_max_tokens_over_the_served_context_is_not_sent(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """max_model_len from /v1/models bounds max_tokens before any request goes out."""
        await llm.wait_ready(timeout_s=10)
        assert llm.max_model_len == 4096
        sent = len(fake_llm.requests)
        with pytest.raises(LLMBadRequest, match="max_model_len=4096"):
            await llm.complete("x", SamplingParams(max_tokens=4097))
        assert len(fake_llm.requests) == sent


def test_llm_exported_members() -> None:
    """codekiln.synth.llm keeps the public names it had as one module, now a package."""
    from codekiln.synth import llm as llm_package

    assert sorted(llm_package.__all__) == sorted(
        ["Choice", "Completion", "EndpointStats", "LLMAuthError", "LLMBadRequest", "LLMClient",
         "LLMConfig", "LLMConnectionError", "LLMDeadlineExceeded", "LLMError", "LLMFatalError",
         "LLMProtocolError", "LLMRateLimited", "LLMRetriesExhausted", "LLMRetryableError",
         "LLMServerError", "LLMTimeout", "LLMUnavailable", "SamplingParams", "TokenLogprob",
         "Usage", "cut_at_stops", "normalize_base_url"]
    )  # fmt: skip
    assert all(hasattr(llm_package, name) for name in llm_package.__all__)
