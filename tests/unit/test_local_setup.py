"""`make run` and `make test` when PostgreSQL does not answer and cannot be started: the runner
names the URL and how to start the server, without a traceback. Its only network I/O is one
refused connection to a local port (tests/integration/test_local_setup.py does RabbitMQ)."""

from tests.support import prepare_locally, refused_port


def test_an_unreachable_postgres_is_named_with_how_to_start_it(tmp_path):
    with refused_port() as port:
        url = f"postgresql://postgres:s3cret-pw@127.0.0.1:{port}/accounts"
        # PATH without pg_ctlcluster: the runner cannot start a local cluster.
        result = prepare_locally(path=str(tmp_path), DATABASE_URL=url)

    assert result.returncode == 1, result.stdout + result.stderr
    what, how = result.stderr.strip().splitlines()
    assert what.startswith(
        f"[platform] PostgreSQL does not answer at postgresql://postgres:***@127.0.0.1:{port}/"
        "accounts: "
    )
    assert "Connection refused" in what
    assert "docker compose up -d postgres" in how
    assert "pg_ctlcluster --skip-systemctl-redirect" in how
    assert "Traceback" not in result.stdout + result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "starting" not in result.stdout
