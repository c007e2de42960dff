"""Token login under password guessing: after 10 failures a minute for one username, or from
one address, the API answers 429 with Retry-After, in the error shape, even to the right
password; other users and addresses are not held up."""

from config.api_auth import ADDRESS_SCOPE, USERNAME_SCOPE, LoginFailureThrottle
from tests.api.clients import assert_error, client_for
from tests.tenancy import PASSWORD

URL = "/api/v1/auth/token"


def login(username: str, password: str, *, address: str):
    return client_for(None).post(
        URL, {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_ten_failures_for_one_username_hold_its_logins_for_the_minute(manager, viewer):
    for attempt in range(10):  # from ten addresses: the username is what is guessed at
        assert (
            login("maria", f"guess-{attempt}", address=f"198.51.100.{attempt}").status_code == 400
        )

    refused = login("Maria", PASSWORD, address="198.51.100.77")  # right password, any case
    error = assert_error(refused, 429, "throttled")
    assert "Too many failed logins" in error["message"]
    wait = int(refused["Retry-After"])
    assert 0 < wait <= 60
    # Another user is not held up, from any of those addresses.
    assert login("vera", PASSWORD, address="198.51.100.1").status_code == 200


def test_ten_failures_from_one_address_hold_its_logins_for_the_minute(manager, viewer):
    for attempt in range(10):  # ten usernames tried from one address
        assert login(f"user-{attempt}", "guess", address="203.0.113.9").status_code == 400

    assert_error(login("maria", PASSWORD, address="203.0.113.9"), 429, "throttled")
    assert login("maria", PASSWORD, address="203.0.113.10").status_code == 200


def test_nine_failures_do_not_hold_the_login_and_successes_are_not_counted(manager):
    for attempt in range(9):
        assert login("maria", f"guess-{attempt}", address="192.0.2.5").status_code == 400
    # Were successes counted, the second one would be the eleventh attempt, and refused.
    assert login("maria", PASSWORD, address="192.0.2.5").status_code == 200
    assert login("maria", PASSWORD, address="192.0.2.5").status_code == 200


def _fail_ten_times(*, seconds_ago: float) -> None:
    for scope, ident in ((USERNAME_SCOPE, "maria"), (ADDRESS_SCOPE, "192.0.2.200")):
        throttle = LoginFailureThrottle(scope=scope, ident=ident)
        throttle.wait_needed()
        throttle.now -= seconds_ago
        for _ in range(10):
            throttle.record_failure()


def test_the_hold_ends_when_the_failures_are_a_minute_old(manager):
    _fail_ten_times(seconds_ago=61)
    assert login("maria", PASSWORD, address="192.0.2.200").status_code == 200
    _fail_ten_times(seconds_ago=0)
    assert login("maria", PASSWORD, address="192.0.2.200").status_code == 429
