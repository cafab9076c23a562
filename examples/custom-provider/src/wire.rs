//! The made-up Nimbus cloud's API, as JSON: what its server sends and its client reads.
//!
//! | call | request | answer |
//! |---|---|---|
//! | `GET /v1/instances/{id}` | | [`InstanceView`]; 404 `InstanceNotFound` |
//! | `GET /v1/addresses?label=K=V&…` | | [`AddressList`] (every address carrying all labels) |
//! | `POST /v1/addresses/{id}/attach` | [`AttachRequest`] | [`AddressView`]; 409 `AddressInUse` when on another instance |
//! | `POST /v1/addresses/{id}/detach` | [`DetachRequest`] | [`AddressView`]; a no-op unless on that instance |
//!
//! Every call carries `Authorization: Bearer <token>` (401/403 otherwise); errors are
//! [`ErrorBody`]; 429 carries `Retry-After`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: String,
    pub zone: String,
    pub nic: NicView,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicView {
    pub id: String,
    pub private_ip: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressView {
    pub id: String,
    pub ip: IpAddr,
    pub attached_to: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressList {
    pub addresses: Vec<AddressView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    pub instance: String,
    pub nic: String,
    /// Labels to set on the address together with the attachment (pinip's ownership).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachRequest {
    pub instance: String,
    /// Labels to remove from the address (pinip's ownership record).
    #[serde(default)]
    pub remove_labels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `InstanceNotFound`, `AddressNotFound`, `AddressInUse`, `Unauthorized`,
    /// `Forbidden`, `Throttled`, `Internal`, `BadRequest`.
    pub code: String,
    pub message: String,
}
