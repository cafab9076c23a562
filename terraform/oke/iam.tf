# Least privilege for the agent: the statements of deploy/iam/oci-policy.txt (exactly the
# permissions providers/src/oci calls need; providers/tests/oci_policy.rs keeps the two in
# step), granted to
#   - auth = "api_key": a group holding one API-key user, or
#   - auth = "instance_principal": the dynamic group of the cluster's nodes (the matching
#     rule of deploy/iam/oci-dynamic-group.txt), with no user and no key, or
#   - auth = "workload_identity": pinip's service account in this (enhanced) cluster, the
#     statements of deploy/iam/oci-workload-identity.txt.
# The pool and the nodes share one compartment here.
locals {
  api_key            = var.auth == "api_key"
  instance_principal = var.auth == "instance_principal"
  workload_identity  = var.auth == "workload_identity"
  pinip_subject = (local.instance_principal
    ? "dynamic-group ${join("", oci_identity_dynamic_group.pinip[*].name)}"
    : "group ${join("", oci_identity_group.pinip[*].name)}"
  )
  pinip_group_policy = [
    for line in split("\n", file("${path.module}/../../deploy/iam/oci-policy.txt")) :
    replace(
      replace(
        replace(trimspace(line), "group pinip-agents", local.pinip_subject),
        "compartment <pool-compartment>", "compartment id ${var.compartment_ocid}",
      ),
      "compartment <node-compartment>", "compartment id ${var.compartment_ocid}",
    )
    if startswith(trimspace(line), "Allow ")
  ]
  pinip_workload_policy = [
    for line in split("\n", file("${path.module}/../../deploy/iam/oci-workload-identity.txt")) :
    replace(
      replace(
        replace(trimspace(line), "<cluster-ocid>", oci_containerengine_cluster.main.id),
        "compartment <pool-compartment>", "compartment id ${var.compartment_ocid}",
      ),
      "compartment <node-compartment>", "compartment id ${var.compartment_ocid}",
    )
    if startswith(trimspace(line), "Allow ")
  ]
  pinip_policy = local.workload_identity ? local.pinip_workload_policy : local.pinip_group_policy
  pinip_matching_rule = one([
    for line in split("\n", file("${path.module}/../../deploy/iam/oci-dynamic-group.txt")) :
    replace(trimspace(line), "<node-compartment>", var.compartment_ocid)
    if startswith(trimspace(line), "ALL {")
  ])
}

# Instance principals: every instance of the compartment (narrow the rule when others
# share it: deploy/iam/oci-dynamic-group.txt).
resource "oci_identity_dynamic_group" "pinip" {
  count          = local.instance_principal ? 1 : 0
  compartment_id = var.tenancy_ocid
  name           = "pinip-nodes-${var.cluster_name}"
  description    = "the nodes of OKE cluster ${var.cluster_name}: pinip's instance principals"
  matching_rule  = local.pinip_matching_rule
}

resource "oci_identity_group" "pinip" {
  count          = local.api_key ? 1 : 0
  compartment_id = var.tenancy_ocid
  name           = "pinip-agents-${var.cluster_name}"
  description    = "pinip agents of OKE cluster ${var.cluster_name}"
}

resource "oci_identity_user" "pinip" {
  count          = local.api_key ? 1 : 0
  compartment_id = var.tenancy_ocid
  name           = "pinip-${var.cluster_name}"
  description    = "pinip agent of OKE cluster ${var.cluster_name} (API key only, no console password)"
}

resource "oci_identity_user_capabilities_management" "pinip" {
  count                        = local.instance_principal ? 0 : 1
  user_id                      = oci_identity_user.pinip[0].id
  can_use_api_keys             = true
  can_use_auth_tokens          = false
  can_use_console_password     = false
  can_use_customer_secret_keys = false
  can_use_smtp_credentials     = false
}

resource "oci_identity_user_group_membership" "pinip" {
  count    = local.instance_principal ? 0 : 1
  group_id = oci_identity_group.pinip[0].id
  user_id  = oci_identity_user.pinip[0].id
}

resource "oci_identity_policy" "pinip" {
  compartment_id = var.tenancy_ocid
  name           = "pinip-${var.cluster_name}"
  description    = "pinip: reserved public IPs onto the nodes of ${var.cluster_name} (deploy/iam/oci-policy.txt)"
  statements     = local.pinip_policy
}

# The API key pinip signs with (auth = "api_key"). Its private half lives in the terraform state and in the
# Secret pinip-oci-api-key (pinip.tf): keep the state encrypted, or upload a key made
# elsewhere and create the Secret by hand (deploy/overlays/oci).
resource "tls_private_key" "pinip" {
  count     = local.instance_principal ? 0 : 1
  algorithm = "RSA"
  rsa_bits  = 2048
}

resource "oci_identity_api_key" "pinip" {
  count     = local.instance_principal ? 0 : 1
  user_id   = oci_identity_user.pinip[0].id
  key_value = tls_private_key.pinip[0].public_key_pem
}
