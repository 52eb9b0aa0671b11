"""Submit and cancel runs through the Dagster webserver's GraphQL API, as the UI does.

A run submitted this way goes to the instance's run queue: the daemon starts it when the
queue's limits, the GPU pool and its priority allow, and it shows in the UI with lineage.
"""

from __future__ import annotations

from typing import Any

import httpx

from clone_pipeline.launch.names import PARTITION_TAG
from clone_pipeline.settings import Settings

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  }
}"""
JOBS = """
{ repositoriesOrError { __typename
    ... on RepositoryConnection { nodes { name location { name } pipelines { name } } }
    ... on PythonError { message } } }"""
TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
}"""


class DagsterUnavailableError(RuntimeError):
    """The webserver (and so, as far as we can tell, the daemon) is not running."""


class LaunchError(RuntimeError):
    """Dagster refused the launch; the message is Dagster's."""


class DagsterApi:
    def __init__(self, settings: Settings, timeout: float = 60.0):
        self.url = f"{settings.dagster_url}/graphql"
        self.timeout = timeout
        self._locations: dict[str, tuple[str, str]] = {}

    def _post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            reply = httpx.post(self.url, json={"query": query, "variables": variables or {}},
                               timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DagsterUnavailableError(
                f"the Dagster webserver at {self.url.removesuffix('/graphql')} does not answer "
                f"({type(exc).__name__}): start it and its daemon with `clone-pipeline ui` "
                f"(make ui), or point CLONE_DAGSTER_URL at yours") from exc
        if reply.status_code != 200:
            raise LaunchError(f"Dagster's GraphQL API answered {reply.status_code}")
        body = reply.json()
        if body.get("errors"):
            raise LaunchError("; ".join(e.get("message", "?") for e in body["errors"]))
        return body["data"]

    def _location_of(self, job: str) -> tuple[str, str]:
        if job not in self._locations:
            repos = self._post(JOBS)["repositoriesOrError"]
            if repos["__typename"] != "RepositoryConnection":
                raise LaunchError(f"the code location does not load: {repos.get('message')}")
            for node in repos["nodes"]:
                for pipeline in node["pipelines"]:
                    self._locations[pipeline["name"]] = (node["location"]["name"], node["name"])
        if job not in self._locations:
            raise LaunchError(f"the Dagster webserver at {self.url} has no job {job!r}: is it "
                              f"serving clone_pipeline's workspace.yaml?")
        return self._locations[job]

    def launch(self, job: str, partition: str, tags: dict[str, str],
               run_config: dict[str, Any] | None = None,
               assets: list[str] | None = None) -> str:
        """Submit *job* for one user's partition (only *assets*, with their checks, when
        given); returns the Dagster run id. The run waits in the queue until it may start."""
        location, repository = self._location_of(job)
        selector: dict[str, Any] = {"repositoryLocationName": location,
                                    "repositoryName": repository, "jobName": job}
        if assets is not None:
            selector["assetSelection"] = [{"path": [name]} for name in assets]
        all_tags = {**tags, PARTITION_TAG: partition}
        params = {"selector": selector, "runConfigData": run_config or {}, "mode": "default",
                  "executionMetadata": {"tags": [{"key": k, "value": v}
                                                 for k, v in all_tags.items()]}}
        result = self._post(LAUNCH, {"params": params})["launchPipelineExecution"]
        if result["__typename"] == "LaunchRunSuccess":
            return result["run"]["runId"]
        if result["__typename"] == "RunConfigValidationInvalid":
            raise LaunchError("run config refused: " + "; ".join(
                e["message"] for e in result["errors"]))
        raise LaunchError(f"{result['__typename']}: {result.get('message', '')}".strip())

    def terminate(self, run_id: str) -> None:
        """Cancel a run: a queued one leaves the queue, a started one is told to stop (the
        training child checkpoints first)."""
        result = self._post(TERMINATE, {"runId": run_id})["terminateRun"]
        if result["__typename"] != "TerminateRunSuccess":
            raise LaunchError(f"Dagster did not cancel run {run_id}: "
                              f"{result.get('message') or result['__typename']}")
