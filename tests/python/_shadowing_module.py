"""A module that shadows a builtin at module level (for the stateless-code tests).

Not imported by workers: its functions are meant to be refused, or sent as code.
"""


def len(obj):  # noqa: A001 - shadows the builtin on purpose
    return 42


def lambda_using_shadowed_len():
    return lambda: len([1, 2, 3])


def lambda_using_abs():
    return lambda: abs(-3)
