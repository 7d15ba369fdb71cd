/** Backup, never-delete and restore of a live lab cluster on AZURE (see backup-restore.suite.ts and stores.ts). */
import { backupRestoreSuite } from "./backup-restore.suite";

backupRestoreSuite("azure");
