"""What README.md tells a newcomer, checked: reading `pages` typed with pandas, and the deployment block."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pandas as pd
import pyarrow as pa
import yaml

from conftest import REPO
from docrouter.store.store import Store
from test_store import failed, make_result

ADVICE = 'pd.read_parquet("DIR/results", dtype_backend="pyarrow")'


def test_the_readme_way_reads_pages_as_integers_with_a_null(tmp_path: Path) -> None:
    assert ADVICE in (REPO / "README.md").read_text()
    with Store(tmp_path, "run-a") as store:
        store.record(make_result(1, pages=7))
        store.record(failed(2))  # no pages: null
    plain = pd.read_parquet(tmp_path / "results").sort_values("doc_id")
    assert plain["pages"].dtype == "float64"  # why the README says it: a null turns pandas' default into floats
    typed = pd.read_parquet(tmp_path / "results", dtype_backend="pyarrow").sort_values("doc_id")
    assert typed["pages"].dtype == pd.ArrowDtype(pa.int64())
    assert typed["pages"].iloc[0] == 7 and pd.isna(typed["pages"].iloc[1])
    assert pd.api.types.is_integer_dtype(typed["pages"])


NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def deployments_section() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("\n## Deployments", 1)[1].split("\n## ", 1)[0]


def test_the_readme_counts_the_jobs_prefect_yaml_defines() -> None:
    section = deployments_section()
    said = re.search(r"defines the (\w+) jobs", section)
    assert said is not None, section[:500]
    listed = re.findall(r"^\| `(docrouter-[\w-]+/[\w-]+)` \|", section, flags=re.MULTILINE)
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    assert NUMBERS[said.group(1)] == len(listed) == len(deployments)
    assert {name.split("/")[1] for name in listed} == {d["name"] for d in deployments}


def test_the_readme_waits_for_the_server_before_saving_the_secret(prefect_api_url: str) -> None:
    block = deployments_section().split("```bash\n", 1)[1].split("```", 1)[0]
    start, wait = block.index("prefect server start &"), block.index("until curl -sf $PREFECT_API_URL/health")
    assert start < wait < block.index("Secret(")
    assert httpx.get(f"{prefect_api_url}/health", timeout=30).status_code == 200  # the URL it polls answers
