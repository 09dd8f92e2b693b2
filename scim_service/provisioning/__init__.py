"""The SCIM operations: input → engines (scim/) → storage (store/) in one transaction.

No HTTP here: handlers decode requests and call these functions with a connection and the
organization id taken from the caller's token.
"""
