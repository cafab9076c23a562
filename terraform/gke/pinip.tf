# pinip, deployed from deploy/overlays/gcp (or gcp-ipv6) exactly as `kubectl apply -k`
# would, with what only this cluster knows patched in: the Google service account, the
# cluster name, the pool's label, the image and the startup taint.
locals {
  pinip_env = concat(
    [
      { name = "CLUSTER_NAME", value = var.cluster_name },
      { name = "FILTER", value = "labels.kubeip=reserved;labels.pinip-pool=${var.cluster_name}" },
    ],
    var.taint_public_nodes ? [{ name = "TAINT_KEY", value = "pinip.dev/not-ready" }] : [],
  )
}

data "kustomization_overlay" "pinip" {
  resources = ["${path.module}/../../deploy/overlays/${var.ipv6 ? "gcp-ipv6" : "gcp"}"]

  patches {
    target {
      kind = "ServiceAccount"
      name = "pinip"
    }
    patch = yamlencode({
      apiVersion = "v1"
      kind       = "ServiceAccount"
      metadata = {
        name        = "pinip"
        namespace   = "pinip-system"
        annotations = { "iam.gke.io/gcp-service-account" = google_service_account.pinip.email }
      }
    })
  }

  patches {
    target {
      kind = "DaemonSet"
      name = "pinip"
    }
    patch = yamlencode({
      apiVersion = "apps/v1"
      kind       = "DaemonSet"
      metadata   = { name = "pinip", namespace = "pinip-system" }
      spec = {
        template = {
          spec = {
            containers = [{ name = "pinip", image = var.pinip_image, env = local.pinip_env }]
          }
        }
      }
    })
  }
}

# Namespaces and cluster-wide objects first, then the rest, then anything that depends
# on both (the provider's documented ordering).
resource "kustomization_resource" "pinip_p0" {
  for_each = data.kustomization_overlay.pinip.ids_prio[0]
  manifest = data.kustomization_overlay.pinip.manifests[each.value]

  depends_on = [google_container_node_pool.public, google_container_node_pool.private]
}

resource "kustomization_resource" "pinip_p1" {
  for_each = data.kustomization_overlay.pinip.ids_prio[1]
  manifest = data.kustomization_overlay.pinip.manifests[each.value]

  depends_on = [
    kustomization_resource.pinip_p0,
    google_project_iam_member.pinip,
    google_service_account_iam_member.pinip_workload_identity,
  ]
}

resource "kustomization_resource" "pinip_p2" {
  for_each = data.kustomization_overlay.pinip.ids_prio[2]
  manifest = data.kustomization_overlay.pinip.manifests[each.value]

  depends_on = [kustomization_resource.pinip_p1]
}
