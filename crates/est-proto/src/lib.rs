//! EST (RFC 7030 as updated by RFC 8951) message logic without I/O: operations and paths,
//! media types, the base64 transfer encoding, certs-only responses, and the channel-binding
//! check. The server and the client both drive this code.
mod binding;
mod body;
mod certs_only;
mod csr;
pub mod digest;
mod media;
pub mod multipart;
mod ocsp;
mod path;

pub use binding::{ChannelBinding, binding_matches};
pub use body::{Base64Error, decode_body, encode_body};
pub use certs_only::{CertsOnlyError, certs_only_decode, certs_only_encode, certs_only_encode_der};
pub use csr::{
    CsrError, KeyDelivery, challenge_password, csrattrs_requiring_pop_linking, key_delivery,
    smime_capabilities,
};
pub use media::{MediaType, content_type_matches};
pub use ocsp::{
    OCSP_GET_MAX_LEN, OCSP_PATH, OCSP_REQUEST_MEDIA_TYPE, OCSP_RESPONSE_MEDIA_TYPE, OcspGetError,
    decode_ocsp_get_path, is_ocsp_path,
};
pub use path::{
    CRL_PATH_PREFIX, EstPath, Operation, PathError, crl_path, parse_crl_path, parse_path,
    validate_label,
};
