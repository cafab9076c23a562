# Least privilege for the agent: the custom role of deploy/iam/gcp-role.yaml (exactly the
# Compute permissions providers/src/gcp calls need; tests keep the two in step).
locals {
  pinip_role = yamldecode(file("${path.module}/../../deploy/iam/gcp-role.yaml"))
}

resource "google_project_iam_custom_role" "pinip" {
  role_id     = "pinip_${replace(var.cluster_name, "-", "_")}"
  title       = "pinip (${var.cluster_name})"
  description = local.pinip_role.description
  permissions = local.pinip_role.includedPermissions
  stage       = "GA"
}

resource "google_service_account" "pinip" {
  account_id   = "${var.cluster_name}-pinip"
  display_name = "pinip agent of ${var.cluster_name}"
}

resource "google_project_iam_member" "pinip" {
  project = var.project
  role    = google_project_iam_custom_role.pinip.id
  member  = "serviceAccount:${google_service_account.pinip.email}"
}

# Workload Identity: only pinip's Kubernetes ServiceAccount (pinip-system/pinip in this
# project's workload pool) may act as the Google service account.
resource "google_service_account_iam_member" "pinip_workload_identity" {
  service_account_id = google_service_account.pinip.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project}.svc.id.goog[pinip-system/pinip]"
}
