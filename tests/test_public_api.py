import sts


def test_public_api_is_pinned() -> None:
    assert sorted(sts.__all__) == [
        "Claim", "ClaimRequest", "IssuePolicy", "IssuedToken", "KeyType", "Lifetime", "Principal", "RelyingParty",
        "RequestSecurityToken", "RequestSecurityTokenResponse", "RequestType", "SecurityTokenService",
        "SoapVersion", "StsError", "TokenType", "TrustVersion", "__version__",
    ]
    for name in sts.__all__:
        assert hasattr(sts, name)
