"""fieldplan: after-sales field-service and installation planning for DIY retail."""
