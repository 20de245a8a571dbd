"""Real ``reconciler`` processes: exit codes, one-line errors, and the commands' output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from reconciler.emulator import generate_items
from tests.helpers import free_port, job_toml, run_reconciler, write_config, write_csv

pytestmark = pytest.mark.integration


reconciler = run_reconciler


@pytest.fixture
def setup(tmp_path, start_emulator):
    items = generate_items(1500)
    emulator = start_emulator(items)
    source = write_csv(tmp_path / "exports" / "products.csv", list(items)[:1000])
    config = write_config(tmp_path, job_toml("products", emulator.base_url, source,
                                             emulator=emulator))
    return emulator, config, items


def test_plan_then_run(setup, tmp_path):
    emulator, config, items = setup
    planned = reconciler("--config", config, "plan")
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.splitlines()[0] == "products: dry run: 505 ids would be deleted"
    assert emulator.stats.bulk_delete_requests == 0

    ran = reconciler("--config", config, "run", "products")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0] == "products: 505 deleted, 0 not deleted"
    report = ran.stdout.splitlines()[1].removeprefix("products: report ")
    summary = json.loads((tmp_path / report / "summary.json").read_text())
    assert summary["deleted"] == 505 and summary["exit_code"] == 0
    assert len(emulator.ids()) == len(items) - 505
    # Logs are JSON lines on stderr.
    events = [json.loads(line) for line in ran.stderr.splitlines()]
    assert events[-1]["event"] == "run.finished"


def test_config_from_the_environment_variable(setup):
    _, config, _ = setup
    result = reconciler("run", "--dry-run", env={"RECONCILER_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr


def test_config_error_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[jobs.x.source]\npath = "a.csv"\nid_colum = "sku"\n', encoding="utf-8")
    result = reconciler("--config", path, "plan")
    assert result.returncode == 2
    assert result.stderr == f"reconciler: {path}: jobs.x.source.id_colum: unknown key\n"
    assert result.stdout == ""


def test_unset_variable_names_the_key(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(
        '[jobs.x.source]\npath = "a.csv"\n[jobs.x.target]\nbackend = "bloomreach"\n'
        'project_token = "p"\ncatalog_id = "c"\napi_key_id = "${NO_SUCH_VAR_HERE}"\n'
        'api_secret = "s"\n', encoding="utf-8")
    result = reconciler("--config", path, "check")
    assert result.returncode == 2
    assert result.stderr == (
        f"reconciler: {path}: jobs.x.target.api_key_id: environment variable "
        "NO_SUCH_VAR_HERE is not set\n"
    )


def test_missing_config_and_unknown_job(setup, tmp_path):
    result = reconciler("--config", tmp_path / "nope.toml", "run")
    assert (result.returncode, result.stderr) == (
        2, f"reconciler: {tmp_path / 'nope.toml'}: config file not found\n")
    _, config, _ = setup
    result = reconciler("--config", config, "run", "ghost")
    assert result.returncode == 2
    assert result.stderr == f"reconciler: {config}: no job named 'ghost' (jobs: products)\n"


def test_bad_usage_is_exit_2():
    result = reconciler("frobnicate")
    assert result.returncode == 2
    assert result.stderr.startswith("reconciler: error: argument command: invalid choice")
    assert len(result.stderr.splitlines()) == 1


def test_missing_source_is_refused_exit_3(setup, tmp_path):
    emulator, config, _ = setup
    (tmp_path / "exports" / "products.csv").unlink()
    result = reconciler("--config", config, "run")
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert lines == [f"products: {tmp_path / 'exports' / 'products.csv'}: file not found"]
    assert emulator.stats.bulk_delete_requests == 0


def test_check(setup):
    emulator, config, items = setup
    result = reconciler("--config", config, "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"products: ok: catalog demo-catalog reachable, {len(items)} items\n"
    assert emulator.stats.bulk_delete_requests == 0


def test_check_with_a_bad_secret(tmp_path, start_emulator):
    emulator = start_emulator(["a"])
    source = write_csv(tmp_path / "s.csv", ["a"])
    config = write_config(tmp_path, job_toml("p", emulator.base_url, source, emulator=emulator,
                                             api_secret="nope"))
    result = reconciler("--config", config, "check")
    assert result.returncode == 2
    assert result.stderr == (
        f"p: FAILED: {emulator.base_url}: list items: HTTP 403: invalid secret; "
        "the API key needs the permission "
        "'Catalogs > View catalog items' (or check target.api_secret)\n"
    )


def test_check_against_a_dead_host_makes_one_quick_attempt_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    source = write_csv(tmp_path / "s.csv", ["a"])
    config = write_config(tmp_path, job_toml("p", url, source))
    result = reconciler("--config", config, "check", timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith(f"p: FAILED: {url}: list items: connection failed: ")
    assert len(result.stderr.splitlines()) == 1


def test_check_names_an_unusable_state_dir(setup, tmp_path):
    _, config, _ = setup
    (tmp_path / "state").write_text("")
    result = reconciler("--config", config, "check")
    assert result.returncode == 3
    assert result.stderr == f"products: FAILED: state_dir {tmp_path / 'state'} is not a folder\n"


def test_history_into_a_closed_pipe_exits_quietly(setup):
    """`reconciler history | head -1`: the reader is gone before the output is written."""
    _, config, _ = setup
    assert reconciler("--config", config, "run").returncode == 0
    read, write = os.pipe()
    os.close(read)  # the reader left
    try:
        done = subprocess.run([sys.executable, "-m", "reconciler", "--config", str(config),
                               "history"], stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    finally:
        os.close(write)
    assert done.returncode == 0 and done.stderr == ""


def test_history_and_outcomes_need_no_secrets(setup, tmp_path):
    emulator, config, _ = setup
    text = config.read_text().replace(f'api_secret = "{emulator.settings.api_secret}"',
                                      'api_secret = "${RECONCILER_TEST_SECRET}"')
    config.write_text(text)
    env = {"RECONCILER_TEST_SECRET": emulator.settings.api_secret}
    ran = reconciler("--config", config, "run", env=env)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.splitlines()[1].rsplit("/", 1)[1]
    history = reconciler("--config", config, "history")
    assert history.returncode == 0, history.stderr
    assert run_id in history.stdout
    outcomes = reconciler("--config", config, "outcomes", run_id)
    assert outcomes.returncode == 0 and outcomes.stdout.startswith("item_id,outcome,detail")
    planned = reconciler("--config", config, "plan")  # a command that does need it still says so
    assert planned.returncode == 2
    assert planned.stderr.endswith(
        "jobs.products.target.api_secret: environment variable RECONCILER_TEST_SECRET is not set\n")


def test_emulator_command_serves_the_api(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", str(port), "--generate", "50",
         "--rate", "2/10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner and "items=56" in banner
        base = f"http://127.0.0.1:{port}/data/v2/projects/demo-project/catalogs/demo-catalog"
        auth = ("demo-key", "demo-secret")
        listed = httpx.get(f"{base}/items", params={"count": 5}, auth=auth)  # bound before banner
        assert listed.status_code == 200 and listed.json()["total"] == 56
        codes = [httpx.request("DELETE", f"{base}/items/bulk-delete", json=["x"], auth=auth)
                 .status_code for _ in range(3)]
        assert codes == [200, 200, 429]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_demo_runs_again_and_again(tmp_path):
    for _ in range(2):  # each demo starts from a fresh state (fresh emulator, fresh journal)
        result = reconciler("demo", "--dir", tmp_path / "demo", "--items", "3000")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "protected; as planned)" in result.stdout
        assert "Plan: 148 to delete, skipped 5 protected, 1 unaddressable, 0 pending grace." \
            in result.stdout
        assert f"Next: reconciler --config {tmp_path / 'demo' / 'reconciler.toml'} run " \
            "demo-products" in result.stdout
        reports = tmp_path / "demo" / "state" / "reports" / "demo-products"
        assert len(list(reports.iterdir())) == 4
        assert all((r / "report.html").is_file() for r in reports.iterdir())


def test_the_demo_keeps_out_of_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    result = reconciler("demo", "--dir", tmp_path, "--items", "100")
    assert result.returncode == 2 and "not written by the demo" in result.stderr
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_emulator_command_serves_the_adobe_target_api():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--api", "adobe-target", "--port",
         str(port), "--generate", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = process.stdout.readline()
        assert f"emulator (adobe-target): http://127.0.0.1:{port}" in banner
        headers = {"authorization": "Bearer demo-token", "x-api-key": "demo-client-id"}
        search = httpx.post(f"http://127.0.0.1:{port}/demo-tenant/target/recs/catalogsearch",
                            json={"meta": {"environmentId": 1, "start": 1, "limit": 500}},
                            headers=headers)
        assert search.status_code == 200 and len(search.json()["hits"]) == 26
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_plan_detailed_exitcode_next_command_and_config_after_the_command(setup, tmp_path):
    emulator, config, _ = setup
    planned = reconciler("plan", "--detailed-exitcode", "--config", config)
    assert planned.returncode == 5, planned.stderr
    assert "Plan: 505 to delete, skipped 1 unaddressable, 0 pending grace." in planned.stdout
    assert f"Next: reconciler --config {config} run products" in planned.stdout
    assert "  to delete (505; the first 10):" in planned.stdout
    assert emulator.stats.bulk_delete_requests == 0
    ran = reconciler("run", "--config", config)  # not a terminal: nothing is asked
    assert ran.returncode == 0, ran.stderr
    again = reconciler("--config", config, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stderr
    assert "Plan: 0 to delete" in again.stdout and "Next:" not in again.stdout


def test_plan_out_confirms_the_file_and_the_next_command(setup, tmp_path):
    _, config, _ = setup
    out = tmp_path / "plan.json"
    planned = reconciler("--config", config, "plan", "products", "--out", out)
    assert planned.returncode == 0, planned.stderr
    assert (f"Saved plan: {out} (505 ids to delete); apply it with: "
            f"reconciler --config {config} apply {out}") in planned.stdout
    assert f"Next: reconciler --config {config} apply {out}" in planned.stdout


def test_choices_are_validated_in_one_line(setup):
    _, config, _ = setup
    result = reconciler("--config", config, "outcomes", "some-run", "--outcome", "bogus")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "invalid choice: 'bogus'" in result.stderr


def test_help_has_a_description_examples_and_exit_codes():
    result = reconciler("--help")
    assert result.returncode == 0
    assert "exit codes:" in result.stdout and "5  plan --detailed-exitcode" in result.stdout
    for command in ("plan", "run", "apply", "purge", "outcomes", "daemon", "check"):
        sub = reconciler(command, "--help")
        assert sub.returncode == 0 and "examples:" in sub.stdout, command


def on_a_terminal(config, answer: str, *args: str) -> tuple[int, str]:
    """Run with stdin and stdout on a pseudo-terminal; type ``answer`` at the prompt."""
    import os
    import select

    master, slave = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--config", str(config), *args],
        stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    os.close(slave)
    output, typed = b"", False
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not typed and b"Enter a value:" in output:
            os.write(master, answer.encode() + b"\n")
            typed = True
    process.wait(timeout=60)
    os.close(master)
    return process.returncode, output.decode()


def test_run_on_a_terminal_shows_the_plan_and_asks(setup):
    emulator, config, items = setup
    code, shown = on_a_terminal(config, "no", "run", "products")
    assert code == 3, shown
    assert "Plan: 505 to delete" in shown and "Only 'yes' will be accepted." in shown
    assert "Enter a value: no" in shown
    assert emulator.stats.bulk_delete_requests == 0 and len(emulator.ids()) == len(items)
    code, shown = on_a_terminal(config, "yes", "run", "products")
    assert code == 0, shown
    assert "products: 505 deleted, 0 not deleted" in shown
    assert len(emulator.ids()) == len(items) - 505


def test_run_yes_does_not_ask_on_a_terminal(setup):
    emulator, config, items = setup
    code, shown = on_a_terminal(config, "", "run", "--yes")
    assert code == 0, shown
    assert "Enter a value" not in shown and len(emulator.ids()) == len(items) - 505


def test_a_refusal_lists_every_failing_gate_and_the_way_past(tmp_path, start_emulator):
    items = generate_items(1000)
    emulator = start_emulator(items)
    source = write_csv(tmp_path / "exports" / "products.csv", list(items)[:500])
    config = write_config(tmp_path, job_toml("products", emulator.base_url, source,
                                             emulator=emulator,
                                             safety={"max_delete_fraction": 0.1,
                                                     "max_deletes_per_day": 100,
                                                     "grace_runs": 1, "grace_period": "off"}))
    result = reconciler("--config", config, "run")
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert "products: refused by 2 gate(s); nothing was deleted." in lines
    assert any(line.startswith("  - max_delete_fraction: ") for line in lines)
    assert any(line.startswith("  - max_deletes_per_day: ") for line in lines)
    assert any("--approve" in line for line in lines)
    assert emulator.stats.bulk_delete_requests == 0
