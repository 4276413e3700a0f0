"""The OpenAPI 3.0 description served at GET /openapi.json."""

from __future__ import annotations

from typing import Any

from .models import STATUSES, TEST_STATUSES


def openapi_spec() -> dict[str, Any]:
    run_request = {
        "type": "object",
        "required": ["language", "code"],
        "additionalProperties": False,
        "properties": {
            "language": {"type": "string", "example": "python"},
            "code": {"type": "string"},
            "tests": {
                "type": "string",
                "nullable": True,
                "description": "Python: source run after code in the same namespace; each "
                "top-level def test_*() is one test, else each top-level assert.",
            },
            "stdin": {"type": "string", "default": ""},
            "files": {"type": "object", "additionalProperties": {"type": "string"}},
            "timeout_s": {"type": "number", "default": 10},
            "memory_mb": {"type": "integer", "default": 256},
        },
    }
    test_verdict = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "status": {"type": "string", "enum": list(TEST_STATUSES)},
            "message": {"type": "string"},
        },
    }
    run_result = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": list(STATUSES)},
            "exit_code": {"type": "integer", "nullable": True},
            "signal": {"type": "integer", "nullable": True},
            "stdout": {"type": "string"},
            "stderr": {"type": "string"},
            "truncated": {"type": "boolean"},
            "wall_s": {"type": "number"},
            "cpu_s": {"type": "number"},
            "memory_mb": {"type": "number"},
            "tests": {"type": "array", "items": {"$ref": "#/components/schemas/TestVerdict"}},
            "reason": {"type": "string"},
            "compile_s": {"type": "number"},
        },
    }
    error = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}},
    }

    def answers(schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "200": {"description": "result", "content": {"application/json": {"schema": schema}}},
            "400": {"description": "invalid request", "content": _json_ref("Error")},
            "401": {"description": "missing or wrong bearer token"},
            "413": {"description": "body over the size cap"},
            "429": {"description": "queue full; see Retry-After", "content": _json_ref("Error")},
        }

    return {
        "openapi": "3.0.3",
        "info": {"title": "codekiln sandbox", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "RunRequest": run_request,
                "RunResult": run_result,
                "TestVerdict": test_verdict,
                "Error": error,
            },
        },
        "paths": {
            "/v1/run": {
                "post": {
                    "summary": "Run one program (optionally with tests)",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": _json_ref("RunRequest")},
                    "responses": answers({"$ref": "#/components/schemas/RunResult"}),
                }
            },
            "/v1/run/batch": {
                "post": {
                    "summary": "Run a list of programs concurrently; results in input order",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/RunRequest"},
                                }
                            }
                        },
                    },
                    "responses": answers(
                        {"type": "array", "items": {"$ref": "#/components/schemas/RunResult"}}
                    ),
                }
            },
            "/run_code": {
                "post": {
                    "summary": "SandboxFusion-compatible run (see docs/sandbox.md)",
                    "security": [{"bearer": []}],
                    "responses": {"200": {"description": "SandboxFusion RunCodeResponse"}},
                }
            },
            "/t/{token}/run_code": {
                "post": {
                    "summary": "The same, with the token as a path segment, for SandboxFusion's "
                    "own client (its endpoint: http://host:port/t/<token>); off with "
                    "serve --no-token-in-path",
                    "parameters": [
                        {
                            "name": "token",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "SandboxFusion RunCodeResponse"},
                        "401": {"description": "wrong token"},
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Pool health",
                    "responses": {
                        "200": {"description": "ok"},
                        "503": {"description": "no container"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text"}},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "json"}}}
            },
        },
    }


def _json_ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
