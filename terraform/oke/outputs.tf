output "reserved_addresses" {
  description = "The addresses to whitelist at your partners: every node of the public pool calls out from one of these."
  value       = oci_core_public_ip.pool[*].ip_address
}

output "cluster_id" {
  description = "The OKE cluster."
  value       = oci_containerengine_cluster.main.id
}

output "pinip_user" {
  description = "The IAM user whose API key pinip signs with (group pinip-agents-<cluster>)."
  value       = oci_identity_user.pinip.id
}

output "kubeconfig_command" {
  description = "Point kubectl at the cluster."
  value       = "oci ce cluster create-kubeconfig --cluster-id ${oci_containerengine_cluster.main.id} --region ${var.region} --token-version 2.0.0 --kube-endpoint PUBLIC_ENDPOINT"
}
