import pytest

from eventvision.errors import EXIT_USER_ERROR, FileFormatError, exit_with


def test_exit_with_passes_the_code_and_turns_a_user_error_into_one_line(capsys):
    with pytest.raises(SystemExit) as done:
        exit_with(lambda: 0)
    assert done.value.code == 0

    def bad():
        raise FileFormatError("bad header;\n  rewrite the file", path="x.h5")

    with pytest.raises(SystemExit) as failed:
        exit_with(bad)
    assert failed.value.code == EXIT_USER_ERROR == 2
    assert capsys.readouterr().err == "x.h5: bad header; rewrite the file\n"


def test_exit_with_lets_other_errors_through():
    with pytest.raises(ZeroDivisionError):
        exit_with(lambda: 1 // 0)
