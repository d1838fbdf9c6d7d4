"""Adapters to the outside world (mail transports, SMS gateways, OAuth/OIDC providers).

Each sits behind a ``typing.Protocol`` so the domain depends on the contract, not the vendor; the
implementation is chosen by a dotted setting, with a fake or console twin for development and tests.
"""
