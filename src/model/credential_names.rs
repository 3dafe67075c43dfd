//! Which names carry a credential: query and path parameters, request-body fields and header
//! names are judged by the same rules ([`is_credential_name`]), in any spelling ([`compact`]).
//! Names of data about a credential (`password_expires_at`) and pages' tokens (`next_token`)
//! are not credentials.

use crate::model::names::{compact, ends_in_word_pass, last_bracketed, without_trailing_digits};

/// Whole names, in [`compact`] form, that carry a credential or signature.
const NAMES: &[&str] = &[
    "token",
    "accesstoken",
    "authtoken",
    "xauthtoken",
    "idtoken",
    "refreshtoken",
    "securitytoken",
    "xsecuritytoken",
    "xamzsecuritytoken",
    "sessiontoken",
    "subjecttoken",
    "xsubjecttoken",
    "sig",
    // A request's signature or HMAC by its short name (`?sign=`, as many APIs sign a query;
    // `X-Sign`, `X-Hmac`), and a bearer token under a header named for it (`Bearer`,
    // `X-Auth-Bearer`).
    "sign",
    "hmac",
    "bearer",
    // Swift's temporary URLs.
    "tempurlsig",
    "credential",
    "credentials",
    // Session identifiers as query, path (`;jsessionid=`) or form parameters: whoever holds
    // one is signed in.
    "sessionid",
    "jsessionid",
    "phpsessid",
    "sessionkey",
    "xamzcredential",
    "xgoogcredential",
    "accesskeyid",
    "awsaccesskeyid",
    "accesskey",
    "authkey",
    "xauthkey",
    "pwd",
    "pass",
    "pw",
    // A JSON Web Token as a parameter (`?jwt=`), and OAuth's proof-of-possession (`DPoP`).
    "jwt",
    "dpop",
    // Huawei's access key id and secret key as query or form parameters.
    "ak",
    "sk",
    // One-time passwords (`?otp=`, `X-Totp`).
    "otp",
    "totp",
    "authorization",
    "authentication",
    "xservicetoken",
    "servicetoken",
    "xstoragetoken",
    "xaccesstoken",
    "privatetoken",
    // Nova's server password (`server.adminPass`).
    "adminpass",
    // Huawei IAM's AK/SK sign-in body (`auth.identity.hw_ak_sk.{access,secret}.key`): everything
    // under it is masked.
    "hwaksk",
    // Grants a client trades for a token: a SAML response (Keystone federation), a JWT bearer
    // assertion (RFC 7523) and OAuth client assertions, a PKCE verifier, OAuth 1's verifier.
    "samlresponse",
    "assertion",
    "clientassertion",
    "codeverifier",
    "oauthverifier",
];

/// Endings (in [`compact`] form, trailing digits taken away) that make a name a credential:
/// `root_pwd`, `adminPwd`; app codes and app keys of API gateways (`X-Apig-AppCode`,
/// `X-HW-APPKEY`); key material (`signing_key`, `encryption_key`, `master_key`, `hmac_key`,
/// Swift's `X-Account-Meta-Temp-Url-Key` and `…-Temp-Url-Key-2`); session ids
/// (`x_session_id`); a Keystone MFA receipt (`auth_receipt`); signed assertions and JWTs
/// (`saml_assertion`, `X-JWT-Assertion`, `Cf-Access-Jwt-Assertion`, `x_amzn_oidc_jwt`). A name
/// ending in `pass` as a word of its own (`X-Storage-Pass`, `db_pass`) is one too (see
/// [`ends_in_word_pass`]).
const ENDINGS: &[&str] = &[
    "assertion",
    "jwt",
    "pwd",
    "appcode",
    "appkey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "hmackey",
    "tempurlkey",
    "sessionid",
    "authreceipt",
];

/// Names (as [`NAMES`]) whose whole content is a credential: every string or number at any
/// depth under them is masked.
const CONTAINERS: &[&str] = &["hwaksk"];

/// Parts of names (in [`compact`] form) that always mean a credential, wherever they appear.
const PARTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "signature",
    "apikey",
    // Keystone's TOTP sign-in (`auth.identity.totp.user.passcode`).
    "passcode",
    "passphrase",
    "privatekey",
];

/// What a name ending in `token` starts with when the token is a page's, not a credential
/// (`page_token`, `nextToken`, `ContinuationToken`): such tokens tell pages apart, and a client
/// sends back what the answer gave it.
const PAGE_TOKENS: &[&str] = &[
    "page",
    "next",
    "nextpage",
    "prev",
    "previous",
    "prevpage",
    "continuation",
    "continue",
    "pagination",
    "sync",
    "resume",
    "start",
    "cursor",
    "marker",
    "first",
    "last",
    "more",
];

/// True for a query parameter or body field name that carries a credential, in any spelling
/// (`X-Auth-Token`, `x_auth_token`, `xAuthToken`, `SecurityToken`): the names of [`NAMES`],
/// names holding a part of [`PARTS`] (`client_secret`, `X-Amz-Signature`, `privateKey`), names
/// ending as [`ENDINGS`] says or in the word `pass`, and names ending in `token` that are not a
/// page's ([`PAGE_TOKENS`]). A name with brackets (`auth[token]`, `data[access_token]`, as
/// Rails, PHP and `qs` write nested parameters) is judged whole and by its last bracketed
/// segment: either makes it a credential.
pub fn is_credential_name(name: &str) -> bool {
    let judge = |part: &str| is_credential_compact(&compact(part)) || ends_in_word_pass(part);
    judge(name) || last_bracketed(name).is_some_and(judge)
}

/// [`is_credential_name`] of a name already in [`compact`] form (its word `pass` aside).
/// Trailing digits do not count: `token2` is `token`, `…-Temp-Url-Key-2` a temp-URL key.
pub(crate) fn is_credential_compact(compact: &str) -> bool {
    let compact = without_trailing_digits(compact);
    (NAMES.contains(&compact)
        || PARTS.iter().any(|p| compact.contains(p))
        || ENDINGS.iter().any(|end| compact.ends_with(end))
        || is_token_name(compact))
        && !is_data_compact(compact)
}

/// How a name ends (in [`compact`] form) when it holds a credential word but names data about
/// the credential, which clients filter on and read: `password_expires_at`, `signature_version`,
/// `password_policy`, Glance's `img_signature_hash_method` and `img_signature_key_type`.
const DATA_ENDINGS: &[&str] = &[
    "expiresat",
    "expiry",
    "expired",
    "hashmethod",
    "keytype",
    "certificateuuid",
    "version",
    "method",
    "policy",
    "algorithm",
    "type",
    "length",
    "required",
];

/// Whole names (in [`compact`] form) that hold a credential word but are data: Glance's
/// `img_signature`, a signature of the image anyone with its certificate verifies.
const DATA_NAMES: &[&str] = &["imgsignature"];

/// Whether a [`compact`] name is data about a credential ([`DATA_ENDINGS`], [`DATA_NAMES`]).
fn is_data_compact(compact: &str) -> bool {
    DATA_NAMES.contains(&compact)
        || DATA_ENDINGS
            .iter()
            .any(|end| compact.len() > end.len() && compact.ends_with(end))
}

/// Whether a [`compact`] name ends in `token` and is not a page's ([`PAGE_TOKENS`]).
pub(crate) fn is_token_name(compact: &str) -> bool {
    compact
        .strip_suffix("token")
        .is_some_and(|first| !PAGE_TOKENS.contains(&first))
}

/// True for a credential name whose whole content is secret ([`CONTAINERS`]).
pub(crate) fn is_container(name: &str) -> bool {
    CONTAINERS.contains(&compact(name).as_str())
}

/// Whole names that carry a credential as query or form parameters, though in a JSON body they
/// are ordinary fields (IMS tags are `{"key": …, "value": …}`, Keystone signs in under
/// `"auth"`): an API key (`?key=`, as Google's APIs take it) and `?auth=`.
const PARAM_ONLY_NAMES: &[&str] = &["key", "auth"];

/// [`is_credential_name`], or one of [`PARAM_ONLY_NAMES`] in any case: a query or form
/// parameter's name.
pub(crate) fn is_param_credential_name(name: &str) -> bool {
    is_credential_name(name) || PARAM_ONLY_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}
