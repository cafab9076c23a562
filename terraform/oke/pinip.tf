# pinip, deployed from deploy/overlays/oci (auth = "api_key"),
# deploy/overlays/oci-instance-principal or deploy/overlays/oci-workload-identity
# exactly as `kubectl apply -k` would, with what
# only this cluster knows patched in: the compartment (PROJECT), the region, the cluster
# name, the pool's tags and the image; with an API key, also the Secret holding the OCI
# config file and key the overlay mounts.
locals {
  pinip_env = [
    { name = "CLUSTER_NAME", value = var.cluster_name },
    { name = "FILTER", value = "freeformTags.kubeip=reserved;freeformTags.pinip-pool=${var.cluster_name}" },
    { name = "PROJECT", value = var.compartment_ocid },
    { name = "REGION", value = var.region },
  ]
  # The overlay's own OCI_AUTH (instance principals) is kept: a strategic merge patch
  # merges env entries by name.
  overlay = {
    api_key            = "oci"
    instance_principal = "oci-instance-principal"
    workload_identity  = "oci-workload-identity"
  }[var.auth]
  oci_config = !local.api_key ? "" : join("\n", [
    "[DEFAULT]",
    "user=${join("", oci_identity_user.pinip[*].id)}",
    "fingerprint=${join("", oci_identity_api_key.pinip[*].fingerprint)}",
    "tenancy=${var.tenancy_ocid}",
    "region=${var.region}",
    "key_file=/etc/pinip/oci/key.pem",
    "",
  ])
}

data "kustomization_overlay" "pinip" {
  resources = ["${path.module}/../../deploy/overlays/${local.overlay}"]

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

  depends_on = [oci_containerengine_node_pool.public]
}

# The OCI config file and key the DaemonSet mounts at /etc/pinip/oci (auth = "api_key").
resource "kustomization_resource" "pinip_api_key" {
  count = local.api_key ? 1 : 0
  manifest = jsonencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = "pinip-oci-api-key", namespace = "pinip-system" }
    type       = "Opaque"
    data = {
      config    = base64encode(local.oci_config)
      "key.pem" = base64encode(one(tls_private_key.pinip[*].private_key_pem))
    }
  })

  depends_on = [kustomization_resource.pinip_p0]
}

resource "kustomization_resource" "pinip_p1" {
  for_each = data.kustomization_overlay.pinip.ids_prio[1]
  manifest = data.kustomization_overlay.pinip.manifests[each.value]

  depends_on = [
    kustomization_resource.pinip_p0,
    kustomization_resource.pinip_api_key,
    oci_identity_policy.pinip,
    oci_identity_user_group_membership.pinip,
    oci_identity_dynamic_group.pinip,
  ]
}

resource "kustomization_resource" "pinip_p2" {
  for_each = data.kustomization_overlay.pinip.ids_prio[2]
  manifest = data.kustomization_overlay.pinip.manifests[each.value]

  depends_on = [kustomization_resource.pinip_p1]
}
