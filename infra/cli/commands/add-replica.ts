/** `add-replica`: add one replica to every shard. */
import { scaleCommand } from "../change";

export const register = scaleCommand("add-replica", "add one replica to every shard");
