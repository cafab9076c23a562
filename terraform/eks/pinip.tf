# pinip, deployed from deploy/overlays/aws exactly as `kubectl apply -k` would, with what
# only this cluster knows patched in: the IAM role, the cluster name, the pool's tag, the
# image, and the startup taint / IPv6 settings chosen above.
locals {
  pinip_env = concat(
    [
      { name = "CLUSTER_NAME", value = var.cluster_name },
      { name = "FILTER", value = "Name=tag:kubeip,Values=reserved;Name=tag:pinip-cluster,Values=${var.cluster_name}" },
    ],
    var.taint_public_nodes ? [{ name = "TAINT_KEY", value = "pinip.dev/not-ready" }] : [],
    var.ipv6 ? [
      { name = "IPV6", value = "true" },
      { name = "IPV6_POOL", value = join(",", local.ipv6_pool) },
    ] : [],
  )
}

data "kustomization_overlay" "pinip" {
  resources = ["${path.module}/../../deploy/overlays/aws"]

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
        annotations = { "eks.amazonaws.com/role-arn" = aws_iam_role.pinip.arn }
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

  depends_on = [module.eks]
}

resource "kustomization_resource" "pinip_p1" {
  for_each = data.kustomization_overlay.pinip.ids_prio[1]
  manifest = data.kustomization_overlay.pinip.manifests[each.value]

  depends_on = [kustomization_resource.pinip_p0, aws_iam_role_policy_attachment.pinip]
}

resource "kustomization_resource" "pinip_p2" {
  for_each = data.kustomization_overlay.pinip.ids_prio[2]
  manifest = data.kustomization_overlay.pinip.manifests[each.value]

  depends_on = [kustomization_resource.pinip_p1]
}
