"""A fake Kubernetes API server (aiohttp, port 0) for the launcher tests.

It speaks the real protocol for what the launcher uses: create (POST on a collection), get,
list with label and field selectors, watch (chunked JSON event lines), pod logs with
``follow=true``, and delete. Every object it receives is validated against the same schemas the
manifests are checked with (Kubernetes OpenAPI, and the PyTorchJob CRD schema); an invalid object
is answered 422 with a ``Status`` and recorded in ``invalid``.

Jobs run a short scripted life: created -> pod(s) Running (logs appear) -> Succeeded or Failed
(``fail`` holds the names of jobs that fail).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from codekiln.train import ManifestError
from codekiln.train.kube import validate_object

# (group, version, plural) -> kind for the collections the fake serves
RESOURCES = {
    ("", "v1", "configmaps"): "ConfigMap",
    ("", "v1", "services"): "Service",
    ("", "v1", "pods"): "Pod",
    ("apps", "v1", "deployments"): "Deployment",
    ("batch", "v1", "jobs"): "Job",
    ("kubeflow.org", "v1", "pytorchjobs"): "PyTorchJob",
}
STEP_S = 0.05  # one step of a job's scripted life


class FakeKubeAPI:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.received: list[dict[str, Any]] = []
        self.invalid: list[str] = []
        self.deleted: list[tuple[str, str]] = []
        self.requests: list[str] = []
        self.fail: set[str] = set()
        self.logs: dict[str, list[str]] = {}
        self._rv = 0
        self._changed = asyncio.Condition()
        self._tg: asyncio.TaskGroup | None = None
        self._lives: list[asyncio.Task[None]] = []
        self.url = ""

    # ------------------------------------------------------------ lifecycle

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeKubeAPI]:
        app = web.Application()
        app.router.add_route("*", "/api/{version}/namespaces/{ns}/{plural}", self._collection)
        app.router.add_route("*", "/api/{version}/namespaces/{ns}/{plural}/{name}", self._item)
        app.router.add_get("/api/{version}/namespaces/{ns}/pods/{name}/log", self._log)
        app.router.add_route(
            "*", "/apis/{group}/{version}/namespaces/{ns}/{plural}", self._collection
        )
        app.router.add_route(
            "*", "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}", self._item
        )
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                try:
                    yield self
                finally:
                    for task in self._lives:  # end the scripted lives still running
                        task.cancel()
        finally:
            await runner.cleanup()

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "test-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _key(req: web.Request) -> tuple[str, str, str]:
        m = req.match_info
        return m.get("group", ""), m["version"], m["plural"]

    def _kind(self, req: web.Request) -> str:
        key = self._key(req)
        if key not in RESOURCES:
            raise web.HTTPNotFound(
                text=_status(404, "NotFound", f"no resource {key}"), content_type="application/json"
            )
        return RESOURCES[key]

    async def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        async with self._changed:
            self._changed.notify_all()

    def _list(self, kind: str, ns: str, req: web.Request) -> list[dict[str, Any]]:
        labels = _parse_selector(req.query.get("labelSelector", ""))
        fields = _parse_selector(req.query.get("fieldSelector", ""))
        out = []
        for (k, n, _name, _), obj in sorted(self.objects.items()):
            if k != kind or n != ns:
                continue
            have = obj["metadata"].get("labels") or {}
            if any(have.get(a) != b for a, b in labels.items()):
                continue
            if "metadata.name" in fields and obj["metadata"]["name"] != fields["metadata.name"]:
                continue
            out.append(obj)
        return out

    # ------------------------------------------------------------ handlers

    async def _collection(self, req: web.Request) -> web.StreamResponse:
        kind = self._kind(req)
        ns = req.match_info["ns"]
        self.requests.append(f"{req.method} {req.path}")
        if req.method == "POST":
            return await self._create(req, kind, ns)
        if req.method != "GET":
            raise web.HTTPMethodNotAllowed(req.method, ["GET", "POST"])
        if req.query.get("watch") in ("true", "1", "True"):
            return await self._watch(req, kind, ns)
        items = self._list(kind, ns, req)
        api_version = _api_version(self._key(req))
        return web.json_response(
            {
                "apiVersion": api_version,
                "kind": f"{kind}List",
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }
        )

    async def _create(self, req: web.Request, kind: str, ns: str) -> web.Response:
        body = await req.json()
        self.received.append(copy.deepcopy(body))
        try:
            if body.get("kind") != kind or body.get("apiVersion") != _api_version(self._key(req)):
                raise ManifestError(
                    f"{body.get('apiVersion')}/{body.get('kind')} posted to {req.path}"
                )
            if body["metadata"].get("namespace", ns) != ns:
                raise ManifestError("metadata.namespace differs from the URL's namespace")
            validate_object(body)
        except (ManifestError, KeyError) as exc:
            self.invalid.append(str(exc))
            return web.json_response(json.loads(_status(422, "Invalid", str(exc))), status=422)
        name = body["metadata"]["name"]
        key = (kind, ns, name, "")
        if key in self.objects:
            return web.json_response(
                json.loads(_status(409, "AlreadyExists", f'{kind} "{name}" already exists')),
                status=409,
            )
        obj = copy.deepcopy(body)
        obj["metadata"]["namespace"] = ns
        obj["metadata"]["uid"] = f"uid-{len(self.objects)}"
        self.objects[key] = obj
        await self._bump(obj)
        if kind in ("Job", "PyTorchJob") and self._tg is not None:
            self._lives.append(self._tg.create_task(self._life(kind, ns, name)))
        return web.json_response(obj, status=201)

    async def _item(self, req: web.Request) -> web.Response:
        kind = self._kind(req)
        ns, name = req.match_info["ns"], req.match_info["name"]
        self.requests.append(f"{req.method} {req.path}")
        key = (kind, ns, name, "")
        if key not in self.objects:
            return web.json_response(
                json.loads(_status(404, "NotFound", f"{name} not found")), status=404
            )
        if req.method == "GET":
            return web.json_response(self.objects[key])
        if req.method == "DELETE":
            obj = self.objects.pop(key)
            self.deleted.append((kind, name))
            await self._bump(obj)
            if kind == "Service":  # the API answers a Service delete with the object
                return web.json_response(obj)
            return web.json_response(json.loads(_status(200, "Success", "deleted")))
        raise web.HTTPMethodNotAllowed(req.method, ["GET", "DELETE"])

    async def _watch(self, req: web.Request, kind: str, ns: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        timeout_s = float(req.query.get("timeoutSeconds", "30"))
        sent: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while True:
            for obj in self._list(kind, ns, req):
                name, rv = obj["metadata"]["name"], obj["metadata"]["resourceVersion"]
                if sent.get(name) != rv:
                    etype = "ADDED" if name not in sent else "MODIFIED"
                    sent[name] = rv
                    line = json.dumps({"type": etype, "object": obj}) + "\n"
                    await resp.write(line.encode())
            remaining = end - loop.time()
            if remaining <= 0:
                break
            async with self._changed:
                try:
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()
                except TimeoutError:
                    break
        await resp.write_eof()
        return resp

    async def _log(self, req: web.Request) -> web.StreamResponse:
        ns, name = req.match_info["ns"], req.match_info["name"]
        self.requests.append(f"GET {req.path}?{req.query_string}")
        pod = self.objects.get(("Pod", ns, name, ""))
        if pod is None:
            return web.json_response(json.loads(_status(404, "NotFound", "no pod")), status=404)
        container = req.query.get("container")
        names = [c["name"] for c in pod["spec"]["containers"]]
        if container not in names:
            return web.json_response(
                json.loads(_status(400, "BadRequest", f"container {container} not in {names}")),
                status=400,
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        follow = req.query.get("follow") in ("true", "True", "1")
        sent = 0
        while True:
            lines = self.logs.get(name, [])
            for line in lines[sent:]:
                await resp.write((line + "\n").encode())
            sent = len(lines)
            phase = pod["status"]["phase"]
            if not follow or phase in ("Succeeded", "Failed"):
                break
            async with self._changed:
                await self._changed.wait()
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------ a job's life

    async def _life(self, kind: str, ns: str, name: str) -> None:
        job = self.objects[(kind, ns, name, "")]
        if kind == "PyTorchJob":
            spec = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
            labels = {
                "training.kubeflow.org/job-name": name,
                "training.kubeflow.org/replica-type": "master",
            }
            pod_name = f"{name}-master-0"
        else:
            spec = job["spec"]["template"]
            labels = {"job-name": name, "batch.kubernetes.io/job-name": name}
            if job["spec"].get("completionMode") == "Indexed":
                labels["batch.kubernetes.io/job-completion-index"] = "0"
                pod_name = f"{name}-0-abcde"
            else:
                pod_name = f"{name}-abcde"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": {**(spec.get("metadata", {}).get("labels") or {}), **labels},
            },
            "spec": copy.deepcopy(spec["spec"]),
            "status": {"phase": "Pending"},
        }
        validate_object({k: v for k, v in pod.items() if k != "status"})
        self.objects[("Pod", ns, pod_name, "")] = pod
        await self._bump(pod)
        _set_condition(job, kind, "Created")
        await self._bump(job)
        await asyncio.sleep(STEP_S)
        pod["status"]["phase"] = "Running"
        self.logs[pod_name] = [f"{name}: started"]
        _set_condition(job, kind, "Running")
        await self._bump(pod)
        await self._bump(job)
        for i in range(3):
            await asyncio.sleep(STEP_S)
            self.logs[pod_name].append(json.dumps({"step": i + 1, "loss": 5.0 - i}))
            await self._bump(pod)
        await asyncio.sleep(STEP_S)
        failed = name in self.fail
        self.logs[pod_name].append(f"{name}: {'boom' if failed else 'done'}")
        pod["status"]["phase"] = "Failed" if failed else "Succeeded"
        await self._bump(pod)
        _set_condition(job, kind, "Failed" if failed else "Succeeded")
        await self._bump(job)


def _set_condition(job: dict[str, Any], kind: str, state: str) -> None:
    ctype = {"Job": {"Succeeded": "Complete"}}.get(kind, {}).get(state, state)
    if kind == "Job" and state in ("Created", "Running"):
        job["status"] = {"active": 1}
        return
    cond = {
        "type": ctype,
        "status": "True",
        "reason": f"Job{state}",
        "message": f"job {state.lower()}",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    if kind == "Job":
        cond["lastProbeTime"] = "2026-01-01T00:00:00Z"
    status = job.setdefault("status", {})
    status.setdefault("conditions", [])
    for c in status["conditions"]:
        c["status"] = "False" if kind == "PyTorchJob" else c["status"]
    status["conditions"].append(cond)


def _parse_selector(s: str) -> dict[str, str]:
    out = {}
    for part in filter(None, s.split(",")):
        k, _, v = part.partition("=")
        out[k.strip()] = v.strip().lstrip("=")
    return out


def _api_version(key: tuple[str, str, str]) -> str:
    group, version, _ = key
    return f"{group}/{version}" if group else version


def _status(code: int, reason: str, message: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "reason": reason,
            "message": message,
            "code": code,
        }
    )
