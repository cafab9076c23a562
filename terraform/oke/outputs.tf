output "reserved_addresses" {
  description = "The addresses to whitelist at your partners: every node of the public pool calls out from one of these."
  value       = oci_core_public_ip.pool[*].ip_address
}

output "cluster_id" {
  description = "The OKE cluster."
  value       = oci_containerengine_cluster.main.id
}

output "pinip_user" {
  description = "The IAM user whose API key pinip signs with (group pinip-agents-<cluster>); null unless auth = api_key."
  value       = one(oci_identity_user.pinip[*].id)
}

output "pinip_dynamic_group" {
  description = "The dynamic group of the nodes pinip signs as (auth = instance_principal); null with an API key."
  value       = one(oci_identity_dynamic_group.pinip[*].name)
}

output "kubeconfig_command" {
  description = "Point kubectl at the cluster."
  value       = "oci ce cluster create-kubeconfig --cluster-id ${oci_containerengine_cluster.main.id} --region ${var.region} --token-version 2.0.0 --kube-endpoint PUBLIC_ENDPOINT"
}
