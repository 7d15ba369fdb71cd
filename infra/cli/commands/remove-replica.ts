/** `remove-replica`: remove one replica from every shard. */
import { scaleCommand } from "../change";

export const register = scaleCommand("remove-replica", "remove one replica from every shard");
