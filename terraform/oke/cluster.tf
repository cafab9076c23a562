data "oci_identity_availability_domains" "all" {
  compartment_id = var.tenancy_ocid
}

# The newest Oracle Linux OKE worker image of this Kubernetes version (x86, no GPU).
data "oci_containerengine_node_pool_option" "all" {
  node_pool_option_id = "all"
  compartment_id      = var.compartment_ocid
}

locals {
  oke_version = "OKE-${trimprefix(var.kubernetes_version, "v")}"
  node_images = [
    for s in data.oci_containerengine_node_pool_option.all.sources : s.image_id
    if s.source_type == "IMAGE" && strcontains(s.source_name, local.oke_version) && !strcontains(s.source_name, "aarch64") && !strcontains(s.source_name, "GPU")
  ]
}

resource "oci_containerengine_cluster" "main" {
  # checkov:skip=CKV2_OCI_6: PodSecurityPolicy was removed in Kubernetes 1.25 and OKE refuses it on newer clusters; use Pod Security Admission (namespace labels) instead
  compartment_id     = var.compartment_ocid
  name               = var.cluster_name
  kubernetes_version = var.kubernetes_version
  vcn_id             = oci_core_vcn.main.id
  # Workload identity exists on enhanced clusters only (they cost a monthly fee).
  type = var.auth == "workload_identity" ? "ENHANCED_CLUSTER" : "BASIC_CLUSTER"

  endpoint_config {
    is_public_ip_enabled = true
    subnet_id            = oci_core_subnet.api.id
    nsg_ids              = [oci_core_network_security_group.api.id]
  }

  options {
    kubernetes_network_config {
      pods_cidr     = "10.244.0.0/16"
      services_cidr = "10.96.0.0/16"
    }
  }
}

# The public pool: nodes in the public subnet (an ephemeral public IP each at first),
# labelled for pinip's DaemonSet (pinip.dev/pool=public). pinip swaps each node's
# ephemeral public IP for a reserved one, and restores an ephemeral one if that fails.
resource "oci_containerengine_node_pool" "public" {
  cluster_id         = oci_containerengine_cluster.main.id
  compartment_id     = var.compartment_ocid
  name               = "${var.cluster_name}-public"
  kubernetes_version = var.kubernetes_version
  node_shape         = var.node_shape

  node_shape_config {
    ocpus         = var.node_ocpus
    memory_in_gbs = var.node_memory_gbs
  }

  node_source_details {
    source_type = "IMAGE"
    image_id    = local.node_images[0]
  }

  node_config_details {
    size                                = var.public_nodes
    is_pv_encryption_in_transit_enabled = true

    dynamic "placement_configs" {
      for_each = data.oci_identity_availability_domains.all.availability_domains
      content {
        availability_domain = placement_configs.value.name
        subnet_id           = oci_core_subnet.nodes.id
      }
    }
  }

  initial_node_labels {
    key   = "pinip.dev/pool"
    value = "public"
  }
}
