"""`make test` when RabbitMQ does not answer and cannot be started: the runner names the URL and
how to start the broker, without a traceback. PostgreSQL is the real one, so the check reaches the
broker (tests/unit/test_local_setup.py does PostgreSQL)."""

from tests.support import POSTGRES_URL, prepare_locally, refused_port


def test_an_unreachable_broker_is_named_with_how_to_start_it(tmp_path):
    with refused_port() as port:
        uri = f"amqp://guest:s3cret-pw@127.0.0.1:{port}/"
        # PATH without rabbitmq-server: the runner cannot start a local broker.
        result = prepare_locally(
            "--for-tests", path=str(tmp_path), DATABASE_URL=POSTGRES_URL, AMQP_URI=uri
        )

    assert result.returncode == 1, result.stdout + result.stderr
    what, how = result.stderr.strip().splitlines()
    assert what.startswith(
        f"[platform] RabbitMQ does not answer at amqp://guest:***@127.0.0.1:{port}/: "
    )
    assert "Connection refused" in what
    assert "docker compose up -d rabbitmq" in how
    assert "rabbitmq-server -detached" in how
    assert "Traceback" not in result.stdout + result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "starting" not in result.stdout
