// Every connector kind the agent knows, by the `kind` used in kontobro.toml.
import type { ConnectorFactory } from "./contract.ts";
import { eaccounting } from "./eaccounting/index.ts";
import { economic } from "./economic/index.ts";
import { unimicroFactory as unimicro } from "./unimicro/index.ts";
import { uniconta } from "./uniconta/index.ts";

export const connectorKinds: Record<string, ConnectorFactory> = {
  [economic.kind]: economic,
  [unimicro.kind]: unimicro,
  [uniconta.kind]: uniconta,
  [eaccounting.kind]: eaccounting,
};
