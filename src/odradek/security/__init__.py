"""Security: listeners with TLS and SASL authentication, and the ACL authorizer.

Who a connection is (its principal) is settled by the transport side (TLS, SASL) and
carried on every request's context; what that principal may do is the authorizer's answer.
"""
