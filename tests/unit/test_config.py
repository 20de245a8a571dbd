from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import Limits, Secret, load_config, resolve_config_path
from reconciler.core.errors import EXIT_CONFIG, ConfigError

VALID = """
state_dir = "var"

[jobs.products-eu]
schedule = "*/30 * * * *"

[jobs.products-eu.source]
path = "exports/products.parquet"

[jobs.products-eu.target]
backend = "bloomreach"
project_token = "tok"
catalog_id = "cat"
api_key_id = "${KEY_ID}"
api_secret = "${SECRET}"
"""
ENV = {"KEY_ID": "key-123", "SECRET": "s3cr3t"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reconciler.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str, env: dict[str, str] = ENV) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env)
    assert caught.value.exit_code == EXIT_CONFIG
    return str(caught.value).replace(str(path), "CFG")


def test_valid_config_expands_variables_and_anchors_paths(tmp_path):
    config = load_config(write(tmp_path, VALID), ENV)
    job = config.jobs["products-eu"]
    assert config.state_dir == tmp_path.resolve() / "var"
    assert job.source.path == tmp_path.resolve() / "exports/products.parquet"
    assert job.source.id_column == "item_id"
    assert job.target.base_url == "https://api.exponea.com"
    assert job.target.settings.api_secret.value == "s3cr3t"
    assert job.limits == Limits()
    assert job.schedule == "*/30 * * * *"
    assert config.secrets == ("key-123", "s3cr3t")


def test_secrets_never_show_in_repr(tmp_path):
    config = load_config(write(tmp_path, VALID), ENV)
    assert "s3cr3t" not in repr(config)
    assert "key-123" not in repr(config)
    assert str(Secret("x")) == "Secret('***')"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("schedule = ", "schedulle = "), "CFG: jobs.products-eu.schedulle: unknown key"),
        (('catalog_id = "cat"\n', ""), "CFG: jobs.products-eu.target.catalog_id: missing key"),
        (('"bloomreach"', '"exponea"'),
         "CFG: jobs.products-eu.target.backend: unknown backend 'exponea' "
         "(known: bloomreach, adobe-target, adobe-classic)"),
        (('"bloomreach"', '"adobe-classic"'),
         "CFG: jobs.products-eu.target.inventory: missing key: adobe-classic cannot list its "
         'entities; name an export ({ path = "..." }) or "ledger"'),
        (('"${SECRET}"', '"${MISSING_VAR}"'),
         "CFG: jobs.products-eu.target.api_secret: environment variable MISSING_VAR is not set"),
        (('state_dir = "var"', "state_dir = 5"),
         "CFG: state_dir: expected a string, got an integer"),
        (('"*/30 * * * *"', '"every fortnight"'),
         "CFG: jobs.products-eu.schedule: 'every fortnight' is neither a 5-field cron line "
         "nor 'every N(s|m|h)'"),
        (('products.parquet"', 'products.xlsx"'),
         "CFG: jobs.products-eu.source.path: 'products.xlsx': expected a .csv, .csv.gz or "
         ".parquet file"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, change, message):
    old, new = change
    assert old in VALID
    assert error_for(tmp_path, VALID.replace(old, new, 1)) == message


def test_wrong_types_in_limits(tmp_path):
    text = VALID + "[jobs.products-eu.limits]\nmax_batch_ids = \"many\"\n"
    assert error_for(tmp_path, text) == (
        "CFG: jobs.products-eu.limits.max_batch_ids: expected an integer, got a string"
    )
    text = VALID + "[jobs.products-eu.limits]\nrequests_per_window = true\n"
    assert error_for(tmp_path, text) == (
        "CFG: jobs.products-eu.limits.requests_per_window: expected an integer, got a boolean"
    )
    text = VALID + "[jobs.products-eu.limits]\nwindow_seconds = 0\n"
    assert error_for(tmp_path, text) == (
        "CFG: jobs.products-eu.limits.window_seconds: must be greater than 0, got 0"
    )
    text = VALID + "[jobs.products-eu.limits]\nlist_page_size = 1002\n"
    assert error_for(tmp_path, text) == (
        "CFG: jobs.products-eu.limits.list_page_size: must not exceed list_window (1001)"
    )


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found$"):
        load_config(tmp_path / "nope.toml", ENV)
    assert error_for(tmp_path, "jobs = [").startswith("CFG: not valid TOML: ")


def test_no_jobs_is_an_error(tmp_path):
    assert error_for(tmp_path, 'state_dir = "x"\n[jobs]\n') == (
        "CFG: jobs: define at least one [jobs.NAME] table"
    )


def test_select_unknown_job(tmp_path):
    config = load_config(write(tmp_path, VALID), ENV)
    with pytest.raises(ConfigError) as caught:
        config.select(["nope"])
    assert str(caught.value).endswith("no job named 'nope' (jobs: products-eu)")
    assert [j.name for j in config.select([])] == ["products-eu"]


def test_config_path_resolution_order():
    assert resolve_config_path("a.toml", {"RECONCILER_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"RECONCILER_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == Path("reconciler.toml")


def test_example_config_is_valid():
    example = Path(__file__).parents[2] / "config" / "reconciler.example.toml"
    env = {name: "x" for name in (
        "BLOOMREACH_PROJECT_TOKEN", "BLOOMREACH_CATALOG_ID", "BLOOMREACH_API_KEY_ID",
        "BLOOMREACH_API_SECRET")}
    config = load_config(example, env)
    assert list(config.jobs) == ["products-eu"]
    assert config.jobs["products-eu"].limits == Limits()


def test_secrets_from_credential_files(tmp_path):
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "secret").write_text("from-a-file\n")
    text = VALID.replace('"${SECRET}"', '"file:${CREDENTIALS_DIRECTORY}/secret"')
    config = load_config(write(tmp_path, text), {**ENV, "CREDENTIALS_DIRECTORY":
                                                 str(tmp_path / "creds")})
    assert config.jobs["products-eu"].target.settings.api_secret.value == "from-a-file"
    missing = VALID.replace('"${SECRET}"', '"file:/nonexistent/secret"')
    assert error_for(tmp_path, missing) == (
        "CFG: jobs.products-eu.target.api_secret: cannot read the secret file "
        "/nonexistent/secret: No such file or directory"
    )


def test_daemon_table(tmp_path):
    text = VALID + '[daemon]\ntimezone = "Europe/Prague"\nlisten = "127.0.0.1:9464"\n'
    config = load_config(write(tmp_path, text), ENV)
    assert (config.daemon.timezone, config.daemon.listen) == ("Europe/Prague", "127.0.0.1:9464")
    assert error_for(tmp_path, VALID + '[daemon]\nlisten = "9464"\n') == (
        "CFG: daemon.listen: expected HOST:PORT such as 127.0.0.1:9464, got '9464'"
    )


ADOBE = """
[jobs.recs.source]
path = "exports/products.csv"
[jobs.recs.target]
backend = "adobe-target"
tenant = "acme"
environment = 12
api_key = "${CLIENT_ID}"
token = "${TOKEN}"
"""


def test_adobe_target_config_and_its_limits(tmp_path):
    config = load_config(write(tmp_path, ADOBE), {"CLIENT_ID": "cid", "TOKEN": "tok"})
    target = config.jobs["recs"].target
    assert (target.base_url, target.settings.tenant, target.settings.environment) == (
        "https://mc.adobe.io", "acme", 12)
    assert target.catalog_id == "acme/environment-12"
    assert target.secrets == ("cid", "tok") and target.settings.token_file is None
    limits = config.jobs["recs"].limits
    assert (limits.requests_per_window, limits.window_seconds, limits.max_batch_bytes) == (
        50, 60.0, 8192)


def test_adobe_target_needs_an_environment(tmp_path):
    text = ADOBE.replace("environment = 12\n", "")
    assert error_for(tmp_path, text, {"CLIENT_ID": "c", "TOKEN": "t"}) == (
        "CFG: jobs.recs.target.environment: missing key (a delete without it would reach "
        "every environment)"
    )
    text = ADOBE.replace('tenant = "acme"', 'tenant = "acme"\nproject_token = "x"')
    assert error_for(tmp_path, text, {"CLIENT_ID": "c", "TOKEN": "t"}) == (
        "CFG: jobs.recs.target.project_token: unknown key"
    )


def test_scope_and_grace_period_keys(tmp_path):
    from reconciler.core.settings import Safety

    scoped = VALID.replace('schedule = "*/30 * * * *"',
                           'schedule = "*/30 * * * *"\nscope = ["EU-", "*-eu"]')
    assert load_config(write(tmp_path, scoped), ENV).jobs["products-eu"].scope == ("EU-",
                                                                                   "*-eu")
    assert load_config(write(tmp_path, VALID), ENV).jobs["products-eu"].scope == ()
    assert error_for(tmp_path, scoped.replace('["EU-", "*-eu"]', '["EU-", ""]')) == (
        "CFG: jobs.products-eu.scope: an empty entry would match every id")
    assert error_for(tmp_path, scoped.replace('["EU-", "*-eu"]', "[]")) == (
        "CFG: jobs.products-eu.scope: an empty array would own no id; leave the key out "
        "instead")
    assert error_for(tmp_path, scoped.replace('["EU-", "*-eu"]', '"EU-"')) == (
        "CFG: jobs.products-eu.scope: expected an array of strings, got a string")
    assert Safety().grace_period == 3600
    for value, seconds in (('"off"', None), ('"0s"', 0.0), ('"90m"', 5400.0)):
        text = VALID + f"[jobs.products-eu.safety]\ngrace_period = {value}\n"
        assert load_config(write(tmp_path, text), ENV).jobs[
            "products-eu"].safety.grace_period == seconds
    assert error_for(tmp_path, VALID + '[jobs.products-eu.safety]\ngrace_period = "-1h"\n') == (
        'CFG: jobs.products-eu.safety.grace_period: expected a duration such as "26h", "7d" or '
        '"90m", got \'-1h\'')


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("window_seconds", "nan", "window_seconds: must be a finite number, got nan"),
    ("retry_deadline_seconds", "inf", "retry_deadline_seconds: must be a finite number, got inf"),
    ("max_batch_ids", "10001", "max_batch_ids: must be at most 10,000, got 10,001"),
    ("max_batch_bytes", "20000000", "max_batch_bytes: must be at most 10,000,000, got 20,000,000"),
    ("list_window", "5000", "list_window: must be at most 1,001, got 5,000"),
    ("max_attempts", "1000", "max_attempts: must be at most 100, got 1,000"),
    ("retry_deadline_seconds", "1e9", "retry_deadline_seconds: must be at most 86400, got 1e+09"),
])
def test_limits_are_finite_and_within_the_api_documented_bounds(tmp_path, key, value, expected):
    text = VALID + f"[jobs.products-eu.limits]\n{key} = {value}\n"
    assert error_for(tmp_path, text) == f"CFG: jobs.products-eu.limits.{expected}"


def test_nan_fractions_and_counts_are_refused(tmp_path):
    text = VALID + "[jobs.products-eu.safety]\nmax_deletes_per_day = nan\n"
    assert error_for(tmp_path, text) == (
        "CFG: jobs.products-eu.safety.max_deletes_per_day: must be a finite number, got nan")
    text = VALID + "[jobs.products-eu.safety]\nmax_shrink = nan\n"
    assert error_for(tmp_path, text) == (
        "CFG: jobs.products-eu.safety.max_shrink: must be a finite number, got nan")


def test_adobe_target_page_size_is_bounded_by_its_api(tmp_path):
    text = VALID.replace('backend = "bloomreach"\nproject_token = "tok"\ncatalog_id = "cat"\n'
                         'api_key_id = "${KEY_ID}"\napi_secret = "${SECRET}"\n',
                         'backend = "adobe-target"\ntenant = "t"\nenvironment = 1\n'
                         'api_key = "k"\ntoken = "tk"\n')
    text += "[jobs.products-eu.limits]\nlist_page_size = 1000\n"
    assert error_for(tmp_path, text) == (
        "CFG: jobs.products-eu.limits.list_page_size: must be at most 500, got 1,000")


@pytest.mark.parametrize("name", ["../../x", ".hidden", "a/b", "-x", "with space", "é"])
def test_job_names_that_could_leave_state_dir_are_refused(tmp_path, name):
    text = VALID.replace("products-eu", name.replace('"', ""))
    text = text.replace(f"[jobs.{name}", f'[jobs."{name}"')
    assert error_for(tmp_path, text) == (
        f"CFG: jobs.{name}: a job name is letters, digits, '.', '_' and '-', starting with a "
        "letter or digit")


@pytest.mark.parametrize(("schedule", "expected"), [
    ("every 0s", "'every 0s': the interval must be at least 1 s"),
    ("61 * * * *", "'61 * * * *': Error validating expression '61': the last value (61) is "
                   "higher than the maximum value (59)"),
])
def test_bad_schedules_are_config_errors_for_every_command(tmp_path, schedule, expected):
    text = VALID.replace('"*/30 * * * *"', f'"{schedule}"')
    assert error_for(tmp_path, text) == f"CFG: jobs.products-eu.schedule: {expected}"


def test_a_relative_file_secret_is_read_from_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "secret").write_text("from-file\n", encoding="utf-8")
    monkeypatch.chdir("/")
    config = load_config(write(tmp_path, VALID.replace('"${SECRET}"', '"file:creds/secret"')),
                         ENV)
    assert config.jobs["products-eu"].target.settings.api_secret.value == "from-file"


def test_state_is_a_postgresql_url_with_variables_and_never_shown(tmp_path):
    text = 'state = "postgresql://app:${PGPASSWORD}@db:5432/rec"\n' + VALID
    config = load_config(write(tmp_path, text), {**ENV, "PGPASSWORD": "pg-s3cret"})
    assert config.state == "postgresql://app:pg-s3cret@db:5432/rec"
    assert "pg-s3cret" not in repr(config)
    assert load_config(write(tmp_path, VALID), ENV).state is None  # the default: SQLite
    assert error_for(tmp_path, 'state = "sqlite:///x"\n' + VALID) == (
        "CFG: state: expected a PostgreSQL URL (postgresql://...) or no key (the embedded "
        "SQLite journal under state_dir)")
