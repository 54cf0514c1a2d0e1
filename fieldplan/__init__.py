"""fieldplan: after-sales field-service and installation planning for DIY retail."""

# Every session of the application passes its plan writes through the gate.
from fieldplan import plan_gate as _plan_gate  # noqa: F401
