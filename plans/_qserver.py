"""How the plans describe their parameters to bluesky-queueserver.

A queued plan names its devices as strings; the RE Manager turns them into the
namespace's devices only where the plan says a parameter is a device. The annotation is
``bluesky_queueserver.parameter_annotation_decorator``'s when that package is installed
(it is wherever an RE Manager imports these plans) and nothing otherwise, so the plans
need no queueserver to run in IPython.
"""

from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["CAMERA", "queueserver_annotation"]

F = TypeVar("F", bound=Callable[..., Any])

#: a camera parameter: the name of a detector (top-level device) in the RE Manager's namespace
CAMERA = {"annotation": "Camera", "devices": {"Camera": ["__DETECTOR__:.+"]}}


def queueserver_annotation(parameters: dict[str, dict[str, Any]]) -> Callable[[F], F]:
    """``parameter_annotation_decorator({"parameters": parameters})``, or no-op without it."""
    try:
        from bluesky_queueserver import parameter_annotation_decorator
    except ImportError:  # plain bluesky: annotations matter only to the queueserver
        return lambda plan: plan
    return cast(Callable[[F], F], parameter_annotation_decorator({"parameters": parameters}))
