# Least privilege for the agent: the statements of deploy/iam/oci-policy.txt (exactly the
# permissions providers/src/oci calls need; providers/tests/oci_policy.rs keeps the two in
# step), granted to a group holding one API-key user. The pool and the nodes share one
# compartment here.
locals {
  pinip_policy = [
    for line in split("\n", file("${path.module}/../../deploy/iam/oci-policy.txt")) :
    replace(
      replace(
        replace(trimspace(line), "group pinip-agents", "group ${oci_identity_group.pinip.name}"),
        "compartment <pool-compartment>", "compartment id ${var.compartment_ocid}",
      ),
      "compartment <node-compartment>", "compartment id ${var.compartment_ocid}",
    )
    if startswith(trimspace(line), "Allow ")
  ]
}

resource "oci_identity_group" "pinip" {
  compartment_id = var.tenancy_ocid
  name           = "pinip-agents-${var.cluster_name}"
  description    = "pinip agents of OKE cluster ${var.cluster_name}"
}

resource "oci_identity_user" "pinip" {
  compartment_id = var.tenancy_ocid
  name           = "pinip-${var.cluster_name}"
  description    = "pinip agent of OKE cluster ${var.cluster_name} (API key only, no console password)"
}

resource "oci_identity_user_capabilities_management" "pinip" {
  user_id                      = oci_identity_user.pinip.id
  can_use_api_keys             = true
  can_use_auth_tokens          = false
  can_use_console_password     = false
  can_use_customer_secret_keys = false
  can_use_smtp_credentials     = false
}

resource "oci_identity_user_group_membership" "pinip" {
  group_id = oci_identity_group.pinip.id
  user_id  = oci_identity_user.pinip.id
}

resource "oci_identity_policy" "pinip" {
  compartment_id = var.tenancy_ocid
  name           = "pinip-${var.cluster_name}"
  description    = "pinip: reserved public IPs onto the nodes of ${var.cluster_name} (deploy/iam/oci-policy.txt)"
  statements     = local.pinip_policy
}

# The API key pinip signs with. Its private half lives in the terraform state and in the
# Secret pinip-oci-api-key (pinip.tf): keep the state encrypted, or upload a key made
# elsewhere and create the Secret by hand (deploy/overlays/oci).
resource "tls_private_key" "pinip" {
  algorithm = "RSA"
  rsa_bits  = 2048
}

resource "oci_identity_api_key" "pinip" {
  user_id   = oci_identity_user.pinip.id
  key_value = tls_private_key.pinip.public_key_pem
}
