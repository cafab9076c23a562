# The pool: regional static addresses labelled for pinip's FILTER (labels.kubeip=reserved
# plus this cluster's label, so two clusters in one project never share a pool by
# accident). They stay reserved when nodes come and go; that is the point.
resource "google_compute_address" "pool" {
  count        = var.pool_size
  name         = "${var.cluster_name}-pinip-${count.index}"
  region       = var.region
  address_type = "EXTERNAL"
  network_tier = "PREMIUM"

  # IPv6: a /96 of the dual-stack subnet's external range, for one VM interface.
  ip_version         = var.ipv6 ? "IPV6" : "IPV4"
  ipv6_endpoint_type = var.ipv6 ? "VM" : null
  subnetwork         = var.ipv6 ? google_compute_subnetwork.nodes.id : null

  # `pinip-pool`, not `pinip-cluster`: that key is the ownership label pinip writes on
  # an attached address and deletes on release, so a FILTER on it would drop every
  # released address out of the pool.
  labels = {
    kubeip       = "reserved"
    "pinip-pool" = var.cluster_name
  }
}
