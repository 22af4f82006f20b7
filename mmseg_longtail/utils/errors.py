"""Error messages that name the file they are about."""


def with_file_name(error: Exception, path: str) -> Exception:
    """``error`` as the same exception type with ``path`` in front of its
    message (a RuntimeError where the type takes no single message)."""
    message = f'{path}: {type(error).__name__}: {error}'
    try:
        named = type(error)(message)
    except Exception:  # exception types with other constructor arguments
        named = RuntimeError(message)
    return named
