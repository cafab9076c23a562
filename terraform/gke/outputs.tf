output "reserved_addresses" {
  description = "The addresses to whitelist at your partners: every node of the public pool calls out from one of these."
  value       = google_compute_address.pool[*].address
}

output "cluster_name" {
  description = "The GKE cluster."
  value       = google_container_cluster.main.name
}

output "pinip_service_account" {
  description = "The Google service account pinip acts as (Workload Identity)."
  value       = google_service_account.pinip.email
}

output "kubeconfig_command" {
  description = "Point kubectl at the cluster."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.main.name} --zone ${local.zone} --project ${var.project}"
}
