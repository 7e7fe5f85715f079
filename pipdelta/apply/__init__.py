"""The applier's side: small, bounded and paranoid; it rebuilds a wheel and writes it only if verified."""
