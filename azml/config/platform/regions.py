"""Azure public-cloud region names accepted for ``azml:location``.

Kept as a closed list on purpose: a typo in a region name otherwise surfaces
only at ``pulumi up`` time, after half the stack has been created elsewhere.
Add a region here when Azure opens one (``az account list-locations -o table``).
"""

AZURE_REGIONS: frozenset[str] = frozenset(
    {
        "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast",
        "austriaeast", "belgiumcentral", "brazilsouth", "brazilsoutheast",
        "canadacentral", "canadaeast", "centralindia", "centralus", "chilecentral",
        "eastasia", "eastus", "eastus2", "francecentral", "francesouth",
        "germanynorth", "germanywestcentral", "indonesiacentral", "israelcentral",
        "italynorth", "japaneast", "japanwest", "jioindiacentral", "jioindiawest",
        "koreacentral", "koreasouth", "malaysiawest", "mexicocentral",
        "newzealandnorth", "northcentralus", "northeurope", "norwayeast",
        "norwaywest", "polandcentral", "qatarcentral", "southafricanorth",
        "southafricawest", "southcentralus", "southeastasia", "southindia",
        "spaincentral", "swedencentral", "swedensouth", "switzerlandnorth",
        "switzerlandwest", "uaecentral", "uaenorth", "uksouth", "ukwest",
        "westcentralus", "westeurope", "westindia", "westus", "westus2", "westus3",
    }
)
